/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ctop's native core: libbpf and ctnetlink work in plain C, with no N-API in
 * sight, so that a self-test binary can link it too. Every function returns 0
 * or a negative errno and fills a struct ctop_err saying which step failed.
 */
#ifndef CTOP_CORE_H
#define CTOP_CORE_H

#include <stddef.h>
#include <stdint.h>
#include "../../bpf/ctop.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ctop_err {
	int err;          /* positive errno */
	char step[16];    /* open | load | attach | read | netns | ctnetlink | seed */
	char msg[256];    /* one line, for the user */
};

/* libbpf's messages (verifier log included) from the last failing step. */
const char *ctop_libbpf_log(void);
void ctop_libbpf_log_clear(void);

/* ---- BPF probe --------------------------------------------------------- */
struct ctop_probe;

struct ctop_probe_opts {
	uint32_t max_ports;    /* per-port map entries */
	uint32_t max_tuples;   /* per-tuple insert map entries */
	uint32_t max_drop_tuples; /* per-tuple drop map entries */
	uint32_t target_netns; /* 0: every namespace */
	int tier;              /* enum ctop_tier: which programs to load */
};

/* "fentry", "kprobe", "netfilter" */
const char *ctop_tier_name(int tier);

/* Load one tier's programs (o->tier). The function tiers also attach here,
 * all or nothing; the netfilter tier attaches per namespace (netns.c) and
 * its drop program with ctop_probe_attach_drops. */
int ctop_probe_open_load(const struct ctop_probe_opts *o, struct ctop_probe **out, struct ctop_err *e);
int ctop_probe_tier(const struct ctop_probe *p);
void ctop_probe_destroy(struct ctop_probe *p);
/* Number of possible CPUs (the width of per-CPU map values). */
int ctop_probe_ncpus(const struct ctop_probe *p);
/* Attach tp_btf/kfree_skb. Call after every drop_seen seed. */
int ctop_probe_attach_drops(struct ctop_probe *p, struct ctop_err *e);
int ctop_probe_seed_drops(struct ctop_probe *p, uint32_t netns, const uint32_t *per_cpu, int n, struct ctop_err *e);
/* Fd of the netfilter program, for links created in other namespaces. */
int ctop_probe_nf_prog_fd(const struct ctop_probe *p);

/* Records handed to the reader: values summed over CPUs. */
struct ctop_port_rec {
	struct ctop_port_key key;
	struct ctop_counts counts;
};
struct ctop_tuple_rec {
	struct ctop_tuple_key key;
	uint32_t pad;
	struct ctop_counts counts;
};
/* Read every entry. *out is malloc'ed by the callee; *n entries. */
int ctop_probe_read_ports(struct ctop_probe *p, struct ctop_port_rec **out, size_t *n, struct ctop_err *e);
/* drops = 0: the insert map (counts.inserts set); 1: the drop map (counts.drops set) */
int ctop_probe_read_tuples(struct ctop_probe *p, int drops, struct ctop_tuple_rec **out, size_t *n, struct ctop_err *e);
/* Function tiers: per-port entry life cycle (entries, deletes, early drops,
 * insert_failed, clashes), summed over CPUs. Empty in the netfilter tier. */
struct ctop_event_rec {
	struct ctop_port_key key;
	struct ctop_port_events events;
};
int ctop_probe_read_events(struct ctop_probe *p, struct ctop_event_rec **out, size_t *n, struct ctop_err *e);
/* Per loaded program: runs and time spent, counted by the kernel while the
 * sysctl kernel.bpf_stats_enabled is 1 (for benchmarks). */
struct ctop_prog_stat {
	char name[32];
	uint64_t run_cnt, run_time_ns;
};
int ctop_probe_prog_stats(struct ctop_probe *p, struct ctop_prog_stat *out, int max, int *n);
int ctop_probe_read_totals(struct ctop_probe *p, uint64_t out[CTOP_TOTAL_COUNT], struct ctop_err *e);
/* Run the netfilter program once on a crafted packet (BPF_PROG_TEST_RUN):
 * pf 2/10, hook NF_INET_*; hooks other than LOCAL_OUT take an Ethernet frame. */
int ctop_probe_test_run_nf(struct ctop_probe *p, const void *pkt, uint32_t len, uint8_t pf, uint8_t hook,
			   uint32_t *retval, struct ctop_err *e);
/* Map capacities as loaded. */
void ctop_probe_capacity(const struct ctop_probe *p, uint32_t *ports, uint32_t *tuples, uint32_t *drop_tuples);

/* ---- Network namespaces ------------------------------------------------ */
/* A namespace ctop watches: its netfilter links and its ctnetlink socket.
 * Both hold a reference on the namespace (bpf_nf_link_attach takes one,
 * so does every socket): close it as soon as the namespace is gone. */
struct ctop_netns;

/* Enter the namespace at `path` in a short-lived thread (setns() changes only
 * the calling thread) and open a ctnetlink socket there; with nf_prog_fd >= 0
 * also create the netfilter links. */
int ctop_netns_open(const char *path, int nf_prog_fd, struct ctop_netns **out, struct ctop_err *e);
void ctop_netns_close(struct ctop_netns *ns);
uint32_t ctop_netns_inum(const struct ctop_netns *ns);
int ctop_netns_links(const struct ctop_netns *ns);

/* Conntrack's per-CPU statistics, as `conntrack -S` reads them. */
struct ctop_ct_cpu_stat {
	uint32_t cpu;
	uint32_t found, invalid, insert, insert_failed, drop, early_drop, error;
	uint32_t search_restart, clash_resolve, chaintoolong;
};
#define CTOP_MAX_CPUS 1024
int ctop_netns_cpu_stats(struct ctop_netns *ns, struct ctop_ct_cpu_stat *out, int max, int *n, struct ctop_err *e);
/* Entries in this namespace's table, and the (global) limit. */
int ctop_netns_table(struct ctop_netns *ns, uint32_t *count, uint32_t *max, struct ctop_err *e);

/* ---- internal ---------------------------------------------------------- */
int ctop_err_set(struct ctop_err *e, int err, const char *step, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#ifdef __cplusplus
}
#endif
#endif
