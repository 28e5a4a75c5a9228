/* SPDX-License-Identifier: GPL-2.0 */
/* The self-test's result: named checks gathered as JSON, printed as one line
 * by each scenario; a failure to set up prints {"ok":false,...} and exits. */
#ifndef CTOP_SELFTEST_CHECK_H
#define CTOP_SELFTEST_CHECK_H

#include <stddef.h>
#include <stdio.h>

extern int failures;
extern char checks[16384];
extern size_t checks_len;

void jappend(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* One named comparison, recorded in the JSON either way. */
void check(const char *name, long long got, long long want);
/* A check the tier cannot make, listed as such (never a silent pass). */
void not_counted(const char *name, const char *tier);
/* The scenario's closing members: ok and the checks. */
void print_checks(void);
void json_str(FILE *f, const char *s);
/* Setup failed: one JSON line naming it (and errno), exit 1. */
void die(const char *what) __attribute__((noreturn));

#endif
