/*
 * router/mapjson.c - the map's shards as JSON (see mapjson.h).
 */
#include "router/mapjson.h"

#include <stdio.h>
#include <string.h>

#include "router/journal.h"
#include "shardmap/smap.h"

json_t *mapjson_shards(const struct smap *m)
{
    json_t *shards = json_array();

    for (unsigned i = 0; shards && i < smap_n_shards(m); i++) {
        const struct smap_shard *s = smap_shard(m, i);
        json_t *so = json_object(), *sb = json_array();
        char ep[SMAP_ENDPOINT_STR_MAX];

        if (!so || !sb) {
            json_decref(so);
            json_decref(sb);
            json_decref(shards);
            return NULL;
        }
        json_object_set_new(so, "name", json_string(s->name));
        smap_format_endpoint(&s->master, ep, sizeof(ep));
        json_object_set_new(so, "master", json_string(ep));
        for (unsigned k = 0; k < s->n_standbys; k++) {
            smap_format_endpoint(&s->standbys[k], ep, sizeof(ep));
            json_array_append_new(sb, json_string(ep));
        }
        json_object_set_new(so, "standbys", sb);
        json_object_set_new(so, "vbuckets", json_integer(smap_vbuckets_of_shard(m, i)));
        json_object_set_new(so, "paused", json_boolean(s->paused));
        json_array_append_new(shards, so);
    }
    return shards;
}

json_t *mapjson_words(const char *p, const char *end)
{
    json_t *h = json_object();

    while (h && p < end) {
        const char *eq = p + strcspn(p, "= \n"), *v, *ve;
        char key[64], val[512];

        if (eq >= end || *eq != '=')
            break;
        v = eq + 1;
        if (*v == '"') {
            v++;
            ve = memchr(v, '"', (size_t)(end - v));
            if (!ve)
                ve = end;
        } else {
            ve = v + strcspn(v, " \n");
            if (ve > end)
                ve = end;
        }
        snprintf(key, sizeof(key), "%.*s", (int)(eq - p), p);
        snprintf(val, sizeof(val), "%.*s", (int)(ve - v), v);
        json_object_set_new(h, key, json_string(val));
        p = ve + (ve < end && *ve == '"');
        while (p < end && *p == ' ')
            p++;
    }
    return h;
}

json_t *mapjson_lines(const char *text)
{
    json_t *arr = json_array();

    for (const char *p = text; arr && p && *p;) {
        const char *end = p + strcspn(p, "\n");

        if (end > p)
            json_array_append_new(arr, mapjson_words(p, end));
        p = *end ? end + 1 : end;
    }
    return arr;
}

json_t *mapjson_journal(const struct journal *j)
{
    json_t *o = json_object();

    if (!o || !j->state[0])
        return o;
    json_object_set_new(o, "term", json_integer((json_int_t)j->term));
    json_object_set_new(o, "state", json_string(j->state));
    json_object_set_new(o, "kind", json_string(j->kind[0] ? j->kind : "failover"));
    json_object_set_new(o, "coordinator", json_string(j->coordinator));
    json_object_set_new(o, "in_progress", json_boolean(journal_in_progress(j)));
    if (j->old_text[0])
        json_object_set_new(o, "old", json_string(j->old_text));
    if (j->new_text[0])
        json_object_set_new(o, "new", json_string(j->new_text));
    json_object_set_new(o, "at_ms", json_integer((json_int_t)j->at_ms));
    if (j->started_ms)
        json_object_set_new(o, "started_ms", json_integer((json_int_t)j->started_ms));
    return o;
}

void mapjson_runner(json_t *o, const char *runner, bool alive, const char *coordinator)
{
    json_object_set_new(o, "runner", json_string(runner));
    json_object_set_new(o, "runner_alive", json_boolean(alive));
    json_object_set_new(o, "takeover_by", !alive && coordinator && coordinator[0]
                                              ? json_string(coordinator) : json_null());
}
