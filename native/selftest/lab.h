/* SPDX-License-Identifier: GPL-2.0 */
/* The self-test's lab: the namespace a scenario runs in and the tier under
 * test, loaded by the product's own fallback (ctop_probe_open_best). */
#ifndef CTOP_SELFTEST_LAB_H
#define CTOP_SELFTEST_LAB_H

#include <stdint.h>
#include <stdio.h>
#include "../core/ctop_core.h"

/* --max-tuples: the per-tuple insert map's size (0: the loader's default) */
extern uint32_t lab_max_tuples;
/* --drops: how the function tiers count drops (enum ctop_drops_via; 0: the
 * loader's choice for this kernel) */
extern int lab_drops_via;

/* ctop_probe_open_best for `tier` (CTOP_TIER_AUTO: best first), counting
 * namespace `netns` (0: all). Prints the "refused" and "tier" JSON members
 * to out (and "dropsVia" when one loaded), and each refusal's libbpf log to
 * stderr; NULL when no tier loaded. */
struct ctop_probe *load_tier(int tier, uint32_t netns, FILE *out);
/* In the current namespace: turn conntrack on with an nft rule in a table of
 * `family` (ip, inet), load `tier` counting this namespace only, and link it
 * here. Prints the JSON's opening brace and its refused/tier members; NULL
 * (after printing the failure) when the tier did not load. */
struct ctop_probe *attach_here(int tier, const char *nft, const char *family, struct ctop_netns **ns);
/* The tier's drop program where it is tp_btf/kfree_skb (the netfilter tier;
 * the function tiers unless their drops come from the alloc probes): seed its
 * baseline from the namespace's drop statistic and attach it, as ctop does
 * (dies on failure). Does nothing for the alloc probes, attached at load. */
void watch_drops(struct ctop_probe *p, struct ctop_netns *ns);
int write_file(const char *path, const char *val);
int lo_up(void);

#endif
