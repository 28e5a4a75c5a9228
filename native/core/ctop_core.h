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
	char step[16];    /* open | load | attach | read | seed | test-run | netns | ctnetlink | census | btf | locate */
	char msg[256];    /* one line, for the user */
};

/* libbpf's messages (verifier log included) from the last failing step. */
const char *ctop_libbpf_log(void);
void ctop_libbpf_log_clear(void);
/* Route libbpf's messages to that log and clear it (before open/load). */
void ctop_libbpf_log_begin(void);

/* ---- BPF probe --------------------------------------------------------- */
struct ctop_probe;

/* ctop_probe_opts.tier for ctop_probe_open_best: every tier, best first */
#define CTOP_TIER_AUTO (-1)

struct ctop_probe_opts {
	uint32_t max_ports;    /* per-port map entries */
	uint32_t max_tuples;   /* new flows' tuples held between reads, all CPUs */
	uint32_t max_drop_tuples; /* per-tuple drop map entries */
	uint32_t target_netns; /* 0: every namespace */
	int tier;              /* enum ctop_tier: which programs to load (or CTOP_TIER_AUTO) */
	int drops_via;         /* enum ctop_drops_via: the function tiers' drop programs */
};

/* How a function tier counts table-full drops. kfree_skb: tp_btf/kfree_skb
 * with the drop reason, which runs only when a packet is dropped (the
 * netfilter tier's program); alloc: __nf_conntrack_alloc's error return, for
 * kernels without the reason, which costs a program run per new flow. */
enum ctop_drops_via {
	CTOP_DROPS_AUTO = 0,     /* kfree_skb where the kernel has the reason, else alloc */
	CTOP_DROPS_KFREE_SKB = 1,
	CTOP_DROPS_ALLOC = 2,
};
/* AUTO resolved for this kernel; the others as they are. */
int ctop_drops_via(int want);
const char *ctop_drops_via_name(int via);
/* Does tier run the program of that name (ctop's, or the floor's of
 * bpf/floor.bpf.c: the same PREFIX_fe_/PREFIX_kp_ names) when its drops come
 * via `via` (resolved)? The loader and the floor both ask this, so that the
 * floor's empty programs sit exactly where the tier's do. */
int ctop_tier_runs_program(int tier, int via, const char *name);

/* "fentry", "kprobe", "netfilter" (bpf/ctop.h enum ctop_tier); NULL for
 * anything else. */
const char *ctop_tier_name(int tier);
/* The tier of that name, or -1. */
int ctop_tier_by_name(const char *name);
/* The tier a BPF program belongs to, by its name (bpf/ctop.bpf.c, and the
 * floor programs of bpf/floor.bpf.c): PREFIX_fe_* fentry, PREFIX_kp_* kprobe,
 * anything else netfilter. */
int ctop_tier_of_program(const char *name);

/* Load one tier's programs (o->tier). The function tiers also attach here,
 * all or nothing; the netfilter tier attaches per namespace (netns.c) and
 * its drop program with ctop_probe_attach_drops. */
int ctop_probe_open_load(const struct ctop_probe_opts *o, struct ctop_probe **out, struct ctop_err *e);

/* A tier the kernel refused, in its words. */
struct ctop_tier_refusal {
	int tier;
	struct ctop_err err;
	char log[4096]; /* the end of libbpf's log for that attempt (the verifier's last words) */
};
/* The loader's fallback, for every caller: with o->tier = CTOP_TIER_AUTO each
 * tier in enum ctop_tier order (best first) until one loads (and, for the
 * function tiers, attaches); with a tier, that one only. Every refusal goes to
 * refused[] (room for CTOP_TIER_COUNT), best first. Fails with e set to the
 * last refusal when no tier loaded. */
int ctop_probe_open_best(const struct ctop_probe_opts *o, struct ctop_probe **out, struct ctop_tier_refusal *refused,
			 int *nrefused, struct ctop_err *e);
int ctop_probe_tier(const struct ctop_probe *p);
/* How the loaded tier counts drops (enum ctop_drops_via, resolved; the
 * netfilter tier: kfree_skb). With kfree_skb the caller seeds every watched
 * namespace and then calls ctop_probe_attach_drops, as for the netfilter tier. */
int ctop_probe_drops_via(const struct ctop_probe *p);

/* How a loaded program reaches its hook. */
enum ctop_prog_attach {
	CTOP_ATTACH_AT_LOAD = 0, /* the function tiers' programs: by ctop_probe_open_load */
	CTOP_ATTACH_PER_NETNS = 1, /* the netfilter program: a link per namespace (ctop_netns_open) */
	CTOP_ATTACH_ON_DROPS = 2, /* tp_btf/kfree_skb: by ctop_probe_attach_drops */
};
/* A program of the loaded tier (test-run-only collectors left out). */
struct ctop_prog_info {
	char name[32];
	char hook[128];  /* its section (fentry/..., tp_btf/...), or where netns.c links it */
	int attach;      /* enum ctop_prog_attach */
	int attached;    /* by this probe; CTOP_ATTACH_PER_NETNS: the namespaces' links count */
	/* runs the kernel skipped since load because the program was already
	 * running on that CPU (a softirq interrupting it): events not counted */
	uint64_t recursion_misses;
};
int ctop_probe_programs(const struct ctop_probe *p, struct ctop_prog_info *out, int max, int *n);
void ctop_probe_destroy(struct ctop_probe *p);
/* Attach tp_btf/kfree_skb. Call after every drop_seen seed. */
int ctop_probe_attach_drops(struct ctop_probe *p, struct ctop_err *e);
int ctop_probe_seed_drops(struct ctop_probe *p, uint32_t netns, const uint32_t *per_cpu, int n, struct ctop_err *e);
struct ctop_netns;
/* The drop program matches kfree_skb events against the kernel's per-CPU
 * drop statistic (consume_conntrack_drop in bpf/ctop.bpf.c): seed it with the
 * namespace's statistic as it stands, before ctop_probe_attach_drops. */
int ctop_probe_seed_drops_netns(struct ctop_probe *p, struct ctop_netns *ns, struct ctop_err *e);
/* Fd of the netfilter program, for links created in other namespaces. */
int ctop_probe_nf_prog_fd(const struct ctop_probe *p);

/* A port's inserts: the sum of its roles. */
static inline uint64_t ctop_counts_inserts(const struct ctop_counts *c)
{
	uint64_t n = 0;

	for (int r = 0; r < CTOP_ROLE_COUNT; r++)
		n += c->inserts_by_role[r];
	return n;
}

/* Records handed to the reader: values summed over CPUs. */
struct ctop_port_rec {
	struct ctop_port_key key;
	struct ctop_counts counts;
};
/* A tuple's inserts and drops (tuples carry no role). */
struct ctop_tuple_counts {
	uint64_t inserts, drops;
};
struct ctop_tuple_rec {
	struct ctop_tuple_key key;
	uint32_t pad;
	struct ctop_tuple_counts counts;
};
/* Read every entry. *out is malloc'ed by the callee; *n entries. */
int ctop_probe_read_ports(struct ctop_probe *p, struct ctop_port_rec **out, size_t *n, struct ctop_err *e);
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
	/* runs the kernel skipped because the program was already running on
	 * that CPU (a softirq interrupting it): events it did not count */
	uint64_t recursion_misses;
};
int ctop_probe_prog_stats(struct ctop_probe *p, struct ctop_prog_stat *out, int max, int *n);
/* The tuples whose inserts or drops grew since the previous call on this
 * probe (the first call: since load), one record each with the growth as its
 * counts; the insert and drop maps joined on the raw key (tuple_join.c).
 * Only one reader per probe: a read consumes what it returns.
 * *out points into the probe's own buffer, valid until the next call. */
int ctop_probe_read_tuple_deltas(struct ctop_probe *p, const struct ctop_tuple_rec **out, size_t *n,
				 struct ctop_err *e);
int ctop_probe_read_totals(struct ctop_probe *p, uint64_t out[CTOP_TOTAL_COUNT], struct ctop_err *e);
/* Run the netfilter program once on a crafted packet (BPF_PROG_TEST_RUN):
 * pf 2/10, hook NF_INET_*; hooks other than LOCAL_OUT take an Ethernet frame. */
int ctop_probe_test_run_nf(struct ctop_probe *p, const void *pkt, uint32_t len, uint8_t pf, uint8_t hook,
			   uint32_t *retval, struct ctop_err *e);
/* Map capacities as loaded. */
void ctop_probe_capacity(const struct ctop_probe *p, uint32_t *ports, uint32_t *tuples, uint32_t *drop_tuples);
/* Keys in the per-port hash (bounded by the ports capacity) at the last
 * ctop_probe_read_ports. Ports counted in the per-CPU direct-mapped slots do
 * not occupy it, so the ports read can outnumber the capacity. */
uint32_t ctop_probe_port_hash_entries(const struct ctop_probe *p);

/* ---- Network namespaces ------------------------------------------------ */
/* Debian 12's libbpf 1.1 and uapi headers predate BPF netfilter programs
 * (kernel 6.4): their numbers, from include/uapi/linux/bpf.h. */
#define CTOP_BPF_PROG_TYPE_NETFILTER 32
#define CTOP_BPF_NETFILTER 45
/* Where ctop_netns_open links the netfilter program, in words. */
extern const char ctop_nf_hook_desc[];

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

/* ---- Census (census.c): what the table holds, from one ctnetlink dump ---- */
#define CTOP_CENSUS_NO_STATE 0xff /* not TCP: conntrack keeps no state */
#define CTOP_TCP_STATES 16           /* enum tcp_conntrack has 10; room to spare */
#define CTOP_CENSUS_REMAIN_SLOTS 77
/* Seconds left into a slot, as bpf/walk.h describes: 4 slots per power of two. */
static inline unsigned ctop_remain_slot(uint64_t r)
{
	unsigned e = 0;

	if (r < 4)
		return (unsigned)r;
	while (r >> (e + 1))
		e++;
	if (e > 19)
		return CTOP_CENSUS_REMAIN_SLOTS - 1;
	return 4 * (e - 1) + (unsigned)((r >> (e - 2)) & 3);
}
struct ctop_census_group {
	uint8_t family;   /* AF_INET 2, AF_INET6 10 */
	uint8_t l4proto;  /* IPPROTO_* */
	uint8_t state;    /* enum tcp_conntrack (TCP_CONNTRACK_*), or CTOP_CENSUS_NO_STATE */
	uint8_t pad;
	uint16_t port;    /* original direction's destination port, host order; 0 without ports */
	uint16_t pad2;
	uint32_t entries, assured, unreplied; /* unreplied: no IPS_SEEN_REPLY */
};
struct ctop_census_addr {
	uint8_t family;
	uint8_t pad[3];
	uint8_t addr[16]; /* network order; IPv4 in the first 4 bytes */
	uint32_t entries;
};
struct ctop_census {
	uint64_t entries, assured, unreplied, parse_errors;
	struct ctop_census_group *groups; size_t ngroups;  /* largest first */
	struct ctop_census_addr *srcs; size_t nsrcs;       /* original source, largest first */
	struct ctop_census_addr *dsts; size_t ndsts;       /* original destination */
	uint64_t src_overflow, dst_overflow; /* entries whose address found its table full */
	uint64_t group_overflow; /* entries not counted at all: the group table was full (BPF census) */
	uint64_t remain_overflow; /* TCP entries left out of tcp_remain: its in-kernel table was full */
	/* TCP entries' remaining timeout per state (enum tcp_conntrack): a log2
	 * histogram of seconds left, slots as ctop_remain_slot gives them (the
	 * same as bpf/walk.h CTOP_REMAIN_SLOTS); remain_valid 0 when not read */
	uint64_t tcp_remain[CTOP_TCP_STATES][CTOP_CENSUS_REMAIN_SLOTS];
	int remain_valid;
};
/* Dump this namespace's table and count it; at most max_addrs distinct
 * addresses per direction are kept. Free *out with ctop_census_free. */
int ctop_netns_census(struct ctop_netns *ns, uint32_t max_addrs, struct ctop_census **out, struct ctop_err *e);
void ctop_census_free(struct ctop_census *c);
/* struct NAME in the running kernel's BTF (btf.c): its type id and sizeof;
 * either pointer may be NULL. */
int ctop_btf_struct(const char *name, uint32_t *id, uint32_t *size, struct ctop_err *e);
/* Keep the kernel's BTF parsed between these two calls (they nest), for
 * the functions below; without a hold each call parses it anew. */
void ctop_btf_hold(void);
void ctop_btf_release(void);
/* 1 if the kernel frees netfilter-dropped packets with
 * SKB_DROP_REASON_NETFILTER_DROP and tp_btf/kfree_skb sees the reason (btf.c). */
int ctop_btf_kfree_skb_netfilter_drop(void);

/* ---- Hash walk (walk.c, bpf/walk.bpf.c): chain lengths, measured ---------- */
struct ctop_walk;
struct ctop_walk_result {
	uint32_t buckets;            /* buckets walked */
	uint64_t nodes;              /* chain nodes (2 per entry) in consistent buckets */
	uint32_t longest;
	uint32_t rewalked, inconsistent;
	uint32_t runs;               /* BPF_PROG_TEST_RUN calls */
	uint64_t census_entries;     /* entries counted by the census (original-direction nodes) */
	uint64_t max_run_ns;         /* the longest single BPF run: how long one run held a CPU */
	uint64_t cpu_ns;             /* CPU time of the walking threads over their runs, summed */
	uint32_t nf_conn_bytes;      /* sizeof(struct nf_conn), CO-RE relocated against the kernel's BTF */
	uint32_t threads;            /* threads that ran the walk's runs side by side */
	uint32_t direct_loads;       /* 1: the walk read with plain loads, chains side by side
	                              * (ctop_walk_chain_direct, Linux >= 6.2); 0: with bpf_probe_read_kernel */
	uint64_t hist[128];          /* CTOP_WALK_HIST */
};
/* Most threads one walk runs on (each one BPF run at a time). */
#define CTOP_WALK_MAX_THREADS 16
struct ctop_walk_opts {
	uint32_t max_groups; /* (netns, family, proto, port, state) groups, all namespaces */
	uint32_t max_addrs;  /* distinct (netns, direction, address) keys, all namespaces */
	uint32_t probe_read; /* 1: the bpf_probe_read_kernel walk even where plain loads work (tests) */
	uint32_t rewalk_all; /* 1: every chain walked a second time alone, as a moved one is (tests) */
};
int ctop_walk_open(const struct ctop_walk_opts *o, struct ctop_walk **out, struct ctop_err *e);
void ctop_walk_destroy(struct ctop_walk *w);
/* Attach walk_capture for at most wait_ms and return one confirmed entry's
 * node (0: none seen). With netns_path, a thread entering that namespace
 * sends one UDP datagram to 127.0.0.1 (port 9, discard) to make one. */
int ctop_walk_capture(struct ctop_walk *w, const char *netns_path, uint32_t wait_ms, uint64_t *node,
		      struct ctop_err *e);
/* The table's address from an entry of ctop's own, made by the conntrack
 * kfuncs (Linux >= 6.0) in a network namespace a thread makes for it, and
 * deleted before this returns: no traffic, no rule, no subprocess. */
int ctop_walk_locate_own(struct ctop_walk *w, uint64_t *base, uint32_t *bucket, struct ctop_err *e);
/* Load the walk programs on a thread of their own and, with locate_own, find
 * the table from ctop's own entry (made at the same time on a second
 * thread), so that the caller's start-up runs beside both. */
struct ctop_walk_start;
struct ctop_walk_started {
	int load_err;            /* 0: the programs loaded; else load_e and libbpf's log */
	struct ctop_err load_e;
	char load_log[4096];
	int locate_err;          /* 0: base and bucket hold the table; else locate_e */
	struct ctop_err locate_e;
	uint64_t base;
	uint32_t bucket;
	double load_ms, locate_ms; /* each step's own time on its thread */
};
int ctop_walk_start(const struct ctop_walk_opts *o, int locate_own, struct ctop_walk_start **out, struct ctop_err *e);
/* Wait for it and free s: *w gets the walker (the caller's to destroy; NULL
 * when the programs did not load); with w NULL the walker is destroyed. */
void ctop_walk_start_join(struct ctop_walk_start *s, struct ctop_walk **w, struct ctop_walk_started *r);
/* Delete the entry the datagram of ctop_walk_capture made (by its tuple). */
int ctop_walk_forget_poke(struct ctop_walk *w, struct ctop_err *e);
/* The table's address: from a node (mode 0) or by reading the pointer at a
 * kallsyms address (mode 1). */
int ctop_walk_locate(struct ctop_walk *w, uint64_t in, uint32_t mode, uint64_t *base, uint32_t *bucket,
		     struct ctop_err *e);
/* Walk buckets [0, size) of the table at base, per_run buckets per BPF run,
 * the runs shared by `threads` threads (0: one per online CPU); with census,
 * also count every entry (with addrs, its addresses too). A census walk first
 * empties what an earlier census left unread, so one walker serves many. */
int ctop_walk_chains(struct ctop_walk *w, uint64_t base, uint32_t size, uint32_t per_run, int census, int addrs,
		     uint32_t threads, struct ctop_walk_result *r, struct ctop_err *e);
/* What the census counted, one struct ctop_census per namespace. */
struct ctop_walk_census {
	uint32_t netns;
	struct ctop_census *c;
};
/* Reading empties the census maps: the next census counts from zero. */
int ctop_walk_read_census(struct ctop_walk *w, struct ctop_walk_census **out, size_t *n, struct ctop_err *e);
void ctop_walk_census_free(struct ctop_walk_census *a, size_t n);

/* ---- internal ---------------------------------------------------------- */
/* Read every entry of a hash map (map_read.c): *keys and *vals are malloc'ed
 * for cap entries (vals: val_sz bytes each, ncpus x value for per-CPU maps)
 * and are the caller's to free, also on error. */
int ctop_map_read(int fd, size_t key_sz, size_t val_sz, uint32_t cap, void **keys, void **vals, size_t *n);
/* New flows' tuples from the per-CPU rings (tuple_ring.c). */
struct ctop_tuple_ring;
int ctop_tuple_ring_open(int slots_fd, int heads_fd, int ncpus, uint32_t bits, struct ctop_tuple_ring **out);
void ctop_tuple_ring_close(struct ctop_tuple_ring *r);
/* Tuples whose new flows were written since the last read, one record per
 * tuple with their number in `grew`; out has room for ncpus << bits. */
int ctop_tuple_ring_read(struct ctop_tuple_ring *r, struct ctop_tuple_moved *out, size_t *n);
uint64_t ctop_tuple_ring_lost(const struct ctop_tuple_ring *r);
uint64_t ctop_tuple_ring_claimed(const struct ctop_tuple_ring *r);
uint64_t ctop_tuple_ring_used(const struct ctop_tuple_ring *r);
int ctop_tuple_ring_moved(const struct ctop_tuple_ring *r);
/* Census address rows, most entries first, then family and address (census.c). */
int ctop_census_addr_cmp_desc(const void *x, const void *y);
/* Join the moved tuples of the insert and the drop map into records with
 * both counts (out: room for n_ins + n_drops). tuple_join.c. */
int ctop_tuple_join(const struct ctop_tuple_moved *ins, size_t n_ins, const struct ctop_tuple_moved *drops,
		    size_t n_drops, struct ctop_tuple_rec *out, size_t *n_out);

struct mnl_socket;
struct mnl_socket *ctop_netns_mnl(struct ctop_netns *ns);
unsigned int ctop_netns_next_seq(struct ctop_netns *ns);
/* Discard whatever a failed request left queued on the socket. */
void ctop_netns_drain(struct ctop_netns *ns);
int ctop_err_set(struct ctop_err *e, int err, const char *step, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#ifdef __cplusplus
}
#endif
#endif
