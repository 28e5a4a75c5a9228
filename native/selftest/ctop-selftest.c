// SPDX-License-Identifier: GPL-2.0
/*
 * ctop-selftest: the product's own loader (native/core) and BPF programs,
 * without Node, for kernels ctop is tested on in a VM (test/matrix).
 *
 *   ctop-selftest probe [--tier auto|fentry|kprobe|netfilter]
 *       Load the best tier the kernel takes (or the one named) through the
 *       loader's own fallback (ctop_probe_open_best), and print which one and why each better one
 *       was refused (the kernel's error), as one JSON line.
 *
 *   ctop-selftest hold --tier fentry|kprobe|netfilter [--floor]
 *       Load and attach the tier (or empty programs at the same places),
 *       print one JSON line, and keep it attached until stdin closes; then
 *       print the totals and the programs' run statistics (hold.c; for
 *       bench/, which measures what a tier costs the traffic).
 *
 *   ctop-selftest scenario --tier fentry|kprobe|netfilter [--nft PATH]
 *       In a fresh network namespace, with nf_conntrack_max lowered (global;
 *       the old value is put back at exit), send known loopback
 *       traffic that inserts, evicts and refuses a known number of entries,
 *       then check every count of the tier against that traffic and against
 *       the kernel's own statistics (ctnetlink, scenario.c). One JSON line; exit 1 on any
 *       mismatch. The netfilter tier counts inserts and drops only: the
 *       eviction, deletion and occupancy checks are listed as not applicable.
 *
 *   ctop-selftest roles --tier fentry|kprobe|netfilter [--nft PATH]
 *       In a fresh network namespace, new flows of each role (server,
 *       client, local, forward; IPv4 and IPv6) through TUN devices and
 *       loopback, then check each port's role counts exactly (roles.c).
 *
 *   --drops auto|kfree_skb|alloc (any command)
 *       How the function tiers count table-full drops: auto is the loader's
 *       choice for this kernel (kfree_skb where it has the drop reason);
 *       alloc forces the fallback for older kernels, so that it stays tested.
 */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "lab.h"
#include "selftest.h"

static int parse_tier(const char *s)
{
	if (!strcmp(s, "auto"))
		return CTOP_TIER_AUTO;
	if (ctop_tier_by_name(s) >= 0)
		return ctop_tier_by_name(s);
	fprintf(stderr, "ctop-selftest: unknown tier '%s' (hint: auto, fentry, kprobe or netfilter)\n", s);
	exit(2);
}

static int parse_drops(const char *s)
{
	for (int via = CTOP_DROPS_AUTO; via <= CTOP_DROPS_ALLOC; via++)
		if (!strcmp(s, ctop_drops_via_name(via)))
			return via;
	fprintf(stderr, "ctop-selftest: unknown --drops '%s' (hint: auto, kfree_skb or alloc)\n", s);
	exit(2);
}

static void __attribute__((noreturn)) usage(void)
{
	fprintf(stderr, "usage: ctop-selftest probe [--tier auto|fentry|kprobe|netfilter]\n"
			"       ctop-selftest hold --tier fentry|kprobe|netfilter [--floor] [--max-tuples N]\n"
			"       ctop-selftest scenario --tier fentry|kprobe|netfilter [--nft PATH]\n"
			"       ctop-selftest roles --tier fentry|kprobe|netfilter [--nft PATH]\n"
			"       (each also takes --drops auto|kfree_skb|alloc)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *nft = "nft";
	int tier = CTOP_TIER_AUTO, floor = 0;

	if (argc < 2 || (strcmp(argv[1], "probe") && strcmp(argv[1], "hold") && strcmp(argv[1], "scenario") &&
			  strcmp(argv[1], "roles")))
		usage();
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--tier") && i + 1 < argc)
			tier = parse_tier(argv[++i]);
		else if (!strcmp(argv[i], "--max-tuples") && i + 1 < argc)
			lab_max_tuples = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--drops") && i + 1 < argc)
			lab_drops_via = parse_drops(argv[++i]);
		else if (!strcmp(argv[i], "--floor"))
			floor = 1;
		else if (!strcmp(argv[i], "--nft") && i + 1 < argc)
			nft = argv[++i];
		else
			usage();
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "probe")) {
		struct ctop_probe *p;

		printf("{\"kernel\":");
		{
			char rel[128] = "unknown";
			FILE *f = fopen("/proc/sys/kernel/osrelease", "r");

			if (f) {
				if (fgets(rel, sizeof(rel), f))
					rel[strcspn(rel, "\n")] = 0;
				fclose(f);
			}
			json_str(stdout, rel);
		}
		printf(",");
		p = load_tier(tier, 0, stdout);
		printf("}\n");
		ctop_probe_destroy(p);
		return p ? 0 : 1;
	}
	if (tier == CTOP_TIER_AUTO) {
		fprintf(stderr, "ctop-selftest: %s needs --tier fentry, kprobe or netfilter\n", argv[1]);
		return 2;
	}
	if (!strcmp(argv[1], "hold"))
		return hold(tier, floor);
	if (!strcmp(argv[1], "scenario"))
		return scenario(tier, nft);
	if (!strcmp(argv[1], "roles"))
		return roles_scenario(tier, nft);
	usage();
}

