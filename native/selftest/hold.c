// SPDX-License-Identifier: GPL-2.0
/*
 * ctop-selftest hold --tier T [--floor]: attach a tier (or, with --floor, empty
 * programs at the same places: bpf/floor.bpf.c) and keep it attached until
 * stdin closes; then print what the programs ran (the kernel's run counts and
 * run time, kept while kernel.bpf_stats_enabled is 1) and the totals. For
 * bench/, which measures what a tier costs the traffic against its floor.
 *
 * The netfilter tier links into the namespace hold runs in (start it with
 * `ip netns exec NS`); tp_btf/kfree_skb, where the tier counts drops with it
 * (always on the netfilter tier), is seeded with that namespace's drop
 * statistic and attached, as ctop does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "check.h"
#include "lab.h"
#include "selftest.h"
#include "floor.skel.h"

static void print_prog(int first, const char *name, int fd)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
		return;
	printf("%s{\"name\":\"%s\",\"runs\":%llu,\"ns\":%llu}", first ? "" : ",", name,
	       (unsigned long long)info.run_cnt, (unsigned long long)info.run_time_ns);
}

static void wait_stdin(void)
{
	char buf[64];

	while (read(0, buf, sizeof(buf)) > 0)
		;
}

static int hold_floor(int tier)
{
	struct ctop_floor_bpf *skel = ctop_floor_bpf__open();
	struct bpf_program *prog;
	struct bpf_link *links[16];
	struct ctop_netns *ns = NULL;
	struct ctop_err e = { 0 };
	int nlinks = 0, first = 1;
	/* the loader's choice for the function tiers' drops, so that the empty
	 * programs sit where ctop's would */
	int via = tier == CTOP_TIER_NETFILTER ? CTOP_DROPS_KFREE_SKB : ctop_drops_via(lab_drops_via);

	if (!skel)
		die("cannot open the floor object");
	bpf_object__for_each_program(prog, skel->obj)
		bpf_program__set_autoload(prog, ctop_tier_runs_program(tier, via, bpf_program__name(prog)));
	bpf_program__set_type(skel->progs.floor_nf, CTOP_BPF_PROG_TYPE_NETFILTER);
	bpf_program__set_expected_attach_type(skel->progs.floor_nf, CTOP_BPF_NETFILTER);
	if (ctop_floor_bpf__load(skel))
		die("the kernel refused the floor programs");
	bpf_object__for_each_program(prog, skel->obj) {
		if (!bpf_program__autoload(prog) || prog == skel->progs.floor_nf)
			continue;
		if (nlinks >= 16 || !(links[nlinks++] = bpf_program__attach(prog)))
			die("cannot attach a floor program");
	}
	if (tier == CTOP_TIER_NETFILTER &&
	    ctop_netns_open("/proc/self/ns/net", bpf_program__fd(skel->progs.floor_nf), &ns, &e)) {
		errno = e.err;
		die(e.msg);
	}
	printf("{\"tier\":\"%s\",\"floor\":true,\"dropsVia\":\"%s\"}\n", ctop_tier_name(tier), ctop_drops_via_name(via));
	wait_stdin();
	printf("{\"programs\":[");
	bpf_object__for_each_program(prog, skel->obj) {
		if (!bpf_program__autoload(prog))
			continue;
		print_prog(first, bpf_program__name(prog), bpf_program__fd(prog));
		first = 0;
	}
	printf("]}\n");
	ctop_netns_close(ns);
	for (int i = 0; i < nlinks; i++)
		bpf_link__destroy(links[i]);
	ctop_floor_bpf__destroy(skel);
	return 0;
}

int hold(int tier, int floor)
{
	struct ctop_probe *p;
	struct ctop_netns *ns = NULL;
	uint64_t totals[CTOP_TOTAL_COUNT];
	struct ctop_err e = { 0 };

	if (floor)
		return hold_floor(tier);
	printf("{");
	p = load_tier(tier, 0, stdout);
	printf("}\n");
	if (!p)
		return 1;
	if ((tier == CTOP_TIER_NETFILTER || ctop_probe_drops_via(p) == CTOP_DROPS_KFREE_SKB) &&
	    ctop_netns_open("/proc/self/ns/net", tier == CTOP_TIER_NETFILTER ? ctop_probe_nf_prog_fd(p) : -1, &ns, &e))
		goto fail;
	if (ctop_probe_drops_via(p) == CTOP_DROPS_KFREE_SKB &&
	    (ctop_probe_seed_drops_netns(p, ns, &e) || ctop_probe_attach_drops(p, &e)))
		goto fail;
	wait_stdin();
	if (ctop_probe_read_totals(p, totals, &e))
		goto fail;
	printf("{\"inserts\":%llu,\"drops\":%llu,\"deletes\":%llu,\"portOverflow\":%llu,\"tupleOverflow\":%llu,"
	       "\"clashes\":%llu,\"insertFailed\":%llu,\"otherNfDrops\":%llu,",
	       (unsigned long long)totals[CTOP_TOTAL_INSERTS], (unsigned long long)totals[CTOP_TOTAL_DROPS],
	       (unsigned long long)totals[CTOP_TOTAL_DELETES], (unsigned long long)totals[CTOP_TOTAL_PORT_OVERFLOW],
	       (unsigned long long)totals[CTOP_TOTAL_TUPLE_OVERFLOW], (unsigned long long)totals[CTOP_TOTAL_CLASHES],
	       (unsigned long long)totals[CTOP_TOTAL_INSERT_FAILED], (unsigned long long)totals[CTOP_TOTAL_OTHER_NF_DROPS]);
	if (tier != CTOP_TIER_NETFILTER) {
		/* the function tiers' per-port events, summed: they must add up to the totals */
		struct ctop_event_rec *ev = NULL;
		unsigned long long entries = 0, clashes = 0, failed = 0;
		size_t nev = 0;

		if (ctop_probe_read_events(p, &ev, &nev, &e))
			goto fail;
		for (size_t i = 0; i < nev; i++) {
			entries += ev[i].events.entries;
			clashes += ev[i].events.clashes;
			failed += ev[i].events.insert_failed;
		}
		free(ev);
		printf("\"portEntries\":%llu,\"portClashes\":%llu,\"portInsertFailed\":%llu,", entries, clashes, failed);
	}
	printf("\"programs\":[");
	{
		struct ctop_prog_stat st[16];
		int n = 0;

		ctop_probe_prog_stats(p, st, 16, &n);
		for (int i = 0; i < n; i++)
			printf("%s{\"name\":\"%s\",\"runs\":%llu,\"ns\":%llu,\"misses\":%llu}", i ? "," : "",
			       st[i].name, (unsigned long long)st[i].run_cnt, (unsigned long long)st[i].run_time_ns,
			       (unsigned long long)st[i].recursion_misses);
	}
	printf("]}\n");
	ctop_netns_close(ns);
	ctop_probe_destroy(p);
	return 0;
fail:
	fprintf(stderr, "ctop-selftest: %s\n", e.msg);
	ctop_netns_close(ns);
	ctop_probe_destroy(p);
	return 1;
}
