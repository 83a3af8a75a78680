/*
 * router/journal.c - the failover journal and history (see journal.h).
 */
#include "router/journal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *journal_word(const char *text, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    const char *p = text;

    if (cap)
        out[0] = '\0';
    while (p && *p) {
        while (*p == ' ' || *p == '\n')
            p++;
        if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t n = strcspn(p + kl + 1, " \n");

            snprintf(out, cap, "%.*s", (int)n, p + kl + 1);
            return out;
        }
        p += strcspn(p, " \n");
    }
    return NULL;
}

void journal_parse(const char *text, struct journal *j)
{
    int32_t version = j->version;
    char v[64];

    memset(j, 0, sizeof(*j));
    j->version = version;
    if (!text)
        return;
    if (journal_word(text, "term", v, sizeof(v)))
        j->term = strtoull(v, NULL, 10);
    journal_word(text, "state", j->state, sizeof(j->state));
    journal_word(text, "kind", j->kind, sizeof(j->kind));
    journal_word(text, "coordinator", j->coordinator, sizeof(j->coordinator));
    journal_word(text, "old", j->old_text, sizeof(j->old_text));
    if (journal_word(text, "new", j->new_text, sizeof(j->new_text)) &&
        smap_parse_endpoint(j->new_text, strlen(j->new_text), &j->new_master, NULL) < 0)
        memset(&j->new_master, 0, sizeof(j->new_master));
    if (journal_word(text, "at_ms", v, sizeof(v)))
        j->at_ms = strtoull(v, NULL, 10);
    if (journal_word(text, "started_ms", v, sizeof(v)))
        j->started_ms = strtoull(v, NULL, 10);
    if (journal_word(text, "last_ms", v, sizeof(v)))
        j->last_ms = strtoull(v, NULL, 10);
}

bool journal_in_progress(const struct journal *j)
{
    return j->state[0] && strcmp(j->state, "done") != 0 && strcmp(j->state, "aborted") != 0;
}

int journal_read(struct zkstore_admin *za, const char *shard, struct journal *j, char **errp)
{
    char *text = NULL, *err = NULL;
    int32_t version = -1;
    enum zkstore_rc rc = zkstore_admin_journal_get(za, shard, &text, &version, &err);

    if (rc != ZKSTORE_OK) {
        if (asprintf(errp, "cannot read the journal of shard %s: %s", shard,
                     err ? err : zkstore_rc_name(rc)) < 0)
            *errp = NULL;
        free(err);
        return -1;
    }
    j->version = version;
    journal_parse(text, j);
    free(text);
    return 0;
}

int journal_write(struct zkstore_admin *za, const char *shard, struct journal *j,
                  const char *who, const char *state, const char *extra, char **errp)
{
    char text[JOURNAL_TEXT_MAX], line[JOURNAL_TEXT_MAX + 128];
    char *err = NULL;
    enum zkstore_rc rc;
    uint64_t now = wall_ms();

    if (strcmp(state, "started") == 0 || !j->started_ms)
        j->started_ms = now;
    snprintf(j->state, sizeof(j->state), "%s", state);
    snprintf(j->coordinator, sizeof(j->coordinator), "%s", who);
    j->at_ms = now;
    snprintf(text, sizeof(text), "term=%" PRIu64 " state=%s kind=%s coordinator=%s at_ms=%"
             PRIu64 " started_ms=%" PRIu64 " last_ms=%" PRIu64 "%s%s", j->term, state,
             j->kind[0] ? j->kind : "failover", who, now, j->started_ms, j->last_ms,
             extra[0] ? " " : "", extra);
    rc = zkstore_admin_journal_put(za, shard, text, j->version, &err);
    if (rc != ZKSTORE_OK) {
        if (asprintf(errp, "journal of shard %s, term %" PRIu64 ", step %s: %s", shard, j->term,
                     state, err ? err : zkstore_rc_name(rc)) < 0)
            *errp = NULL;
        free(err);
        return -1;
    }
    j->version = j->version < 0 ? 0 : j->version + 1;
    if (!journal_in_progress(j)) {
        snprintf(line, sizeof(line), "shard=%s took_ms=%" PRIu64 " %s", shard,
                 now - j->started_ms, text);
        if (zkstore_admin_history_add(za, line, JOURNAL_HISTORY_KEEP, &err) != ZKSTORE_OK)
            free(err);
    }
    return 0;
}

bool journal_owned(struct zkstore_admin *za, const char *shard, const struct journal *j,
                   char *why, size_t cap)
{
    struct journal now;
    char *err = NULL;
    bool held = false, ok = false;
    enum zkstore_rc rc = zkstore_admin_held(za, &held, &err);

    if (rc != ZKSTORE_OK || !held)
        snprintf(why, cap, "this runner no longer holds its election or runner node in "
                 "ZooKeeper (%s)", err ? err : "its session expired while it was stopped");
    else if (journal_read(za, shard, &now, &err) < 0)
        snprintf(why, cap, "%s", err ? err : "cannot read the journal");
    else if (now.version != j->version)
        snprintf(why, cap, "the journal moved on (term %" PRIu64 ", %s, by %s)", now.term,
                 now.state, now.coordinator);
    else
        ok = true;
    free(err);
    return ok;
}
