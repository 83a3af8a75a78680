/*
 * router/fault.h - fault injection for tests.
 *
 * Rare failures (an allocation that fails, a buffer that cannot be made
 * contiguous) cannot be provoked from outside a running router, yet their
 * error paths must be tested. A named fault point fails on chosen calls when
 * the environment variable SHARDWIRE_FAULT says so:
 *
 *   SHARDWIRE_FAULT="pullup@3,set_copy@1+"
 *
 * fails the 3rd call of point "pullup" and every call of "set_copy" from the
 * 1st on. Unset (production), fault_fail() costs a pthread_once check.
 * Any thread.
 */
#ifndef SHARDWIRE_ROUTER_FAULT_H
#define SHARDWIRE_ROUTER_FAULT_H

#include <stdbool.h>

/* True when this call of <point> must fail. */
bool fault_fail(const char *point);

/* Replaces the points (SHARDWIRE_FAULT's at first) with those of <spec>,
 * same syntax, call counts from 0; NULL or "" clears them. For tests that
 * drive fault points in-process (tests/unit/core), while no other thread
 * reaches a fault point. */
void fault_set(const char *spec);

/* When this call of <point> is chosen, logs "fault: delay point=<point>"
 * and sleeps <ms>: a race window made wide enough for a test to act in
 * (another thread's work between two steps). */
void fault_delay(const char *point, unsigned ms);

#endif
