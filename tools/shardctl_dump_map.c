/*
 * tools/shardctl_dump_map.c - `shardctl dump-map`: the map text from
 * ZooKeeper (or a --map file, normalised), ready to use as a router map_file.
 */
#include <stdio.h>
#include <stdlib.h>

#include "shardmap/mapcodec.h"
#include "shardmap/smap.h"
#include "tools/shardctl.h"

int shardctl_dump_map(const struct shardctl_opts *o)
{
    struct smap *m = NULL;
    if (o->argc != 0) {
        shardctl_err("dump-map takes no operands");
        return SHARDCTL_USAGE;
    }
    int ex = shardctl_load_map(o, &m);
    if (ex != SHARDCTL_OK)
        return ex;
    char *text = mapcodec_format(m);
    smap_unref(m);
    if (text == NULL) {
        shardctl_err("out of memory");
        return SHARDCTL_FAILED;
    }
    fputs(text, stdout);
    free(text);
    if (fflush(stdout) != 0) {
        shardctl_err("stdout: write failed");
        return SHARDCTL_FAILED;
    }
    return SHARDCTL_OK;
}
