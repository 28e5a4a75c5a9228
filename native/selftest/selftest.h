/* SPDX-License-Identifier: GPL-2.0 */
/* What the self-test's scenarios share (ctop-selftest.c): checks recorded as
 * JSON, the loader's fallback, small system helpers. */
#ifndef CTOP_SELFTEST_H
#define CTOP_SELFTEST_H

#include <stdint.h>
#include <stdio.h>
#include "../core/ctop_core.h"

extern int failures;
extern char checks[16384];
extern size_t checks_len;

void jappend(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* One named comparison, recorded in the JSON either way. */
void check(const char *name, long long got, long long want);
void json_str(FILE *f, const char *s);
/* Print the "refused" and "tier" JSON members; NULL when no tier loaded. */
struct ctop_probe *load_tier(int only, uint32_t netns, FILE *out);
int write_file(const char *path, const char *val);
void die(const char *what) __attribute__((noreturn));
int lo_up(void);
/* In the current namespace: turn conntrack on with an nft rule in a table of
 * `family` (ip, inet), load `tier` counting this namespace only, and link it
 * here. Prints the JSON's opening brace and its refused/tier members; NULL
 * (after printing the failure) when the tier did not load. */
struct ctop_probe *attach_here(int tier, const char *nft, const char *family, struct ctop_netns **ns);

/* hold.c: ctop-selftest hold --tier T [--floor] */
int hold(int tier, int floor);

/* roles.c: ctop-selftest roles --tier T */
int roles_scenario(int tier, const char *nft);

#endif
