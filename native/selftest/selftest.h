/* SPDX-License-Identifier: GPL-2.0 */
/* The self-test's scenarios (ctop-selftest.c dispatches): each prints one
 * JSON line and returns 0 when every check passed. */
#ifndef CTOP_SELFTEST_H
#define CTOP_SELFTEST_H

/* scenario.c: ctop-selftest scenario --tier T */
int scenario(int tier, const char *nft);

/* roles.c: ctop-selftest roles --tier T */
int roles_scenario(int tier, const char *nft);

/* hold.c: ctop-selftest hold --tier T [--floor] */
int hold(int tier, int floor);

#endif
