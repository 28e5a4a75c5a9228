/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between bpf/walk.bpf.c and native/core/walk.c. */
#ifndef CTOP_WALK_H
#define CTOP_WALK_H

/* Longest chain followed. The kernel refuses inserts into chains longer than
 * 50..79 (nf_conntrack_core.c, MIN_CHAINLEN/MAX_CHAINLEN), so a longer one
 * means the walk lost its way (entries moving), not a real chain. */
#define CTOP_WALK_MAX_CHAIN 256
/* Histogram slots: chain length 0..CTOP_WALK_HIST-2, the last "that or more". */
#define CTOP_WALK_HIST 128

#define CTOP_LOCATE_OK 0
#define CTOP_LOCATE_READ 1      /* a pointer could not be read */
#define CTOP_LOCATE_NO_MARKER 2 /* no nulls marker within CTOP_WALK_MAX_CHAIN nodes */
#define CTOP_LOCATE_NO_HEAD 3   /* no bucket head within CTOP_WALK_MAX_CHAIN nodes back */

/* What one CPU's walk runs found (a per-CPU array slot, summed by user
 * space): chain lengths, and the census's running state. */
struct ctop_walk_stats {
	__u64 hist[CTOP_WALK_HIST];
	__u64 nodes;
	__u64 census_entries;   /* original-direction nodes counted */
	__u64 last_net;         /* one-entry cache: struct net * -> its inode */
	__u32 last_inum;
	__u32 longest;
	__u32 rewalked;
	__u32 inconsistent;
	__u32 done;             /* buckets walked, consistent or not */
	__u32 run_start;        /* first bucket of the run in progress */
	__u32 addrs_full;       /* census_addrs refused an insert: the rest is overflow */
	__u32 run_end;          /* one past the last bucket of the run in progress */
};

/* Census keys and values (walk_chains with census_enabled). */
struct ctop_census_key {
	__u32 netns;    /* network namespace inode */
	__u8 family;    /* AF_INET 2, AF_INET6 10 */
	__u8 proto;     /* IPPROTO_* */
	__u8 state;     /* enum tcp_conntrack for TCP; 0xff otherwise */
	__u8 pad;
	__u16 port;     /* original destination port, host order; 0 without ports */
	__u16 pad2;
};
struct ctop_census_val {
	__u64 entries, assured, unreplied;
};
struct ctop_census_addr_key {
	__u32 netns;
	__u8 family;
	__u8 dir;       /* 0 original source, 1 original destination */
	__u8 pad[2];
	__u8 addr[16];
};
struct ctop_census_ovf_key {
	__u32 netns;
	__u32 what;     /* 0 source address table full, 1 destination, 2 group table full,
	                 * 3 TCP seconds-left histogram table full (entry left out of it) */
};

/* Remaining timeout of TCP entries, per (namespace, TCP state): a histogram
 * of seconds left with 4 slots per power of two (relative width at most 25%).
 * r < 4: slot r; else with e = floor(log2 r): slot 4(e-1) + ((r >> (e-2)) & 3),
 * up to e = 19; the last slot holds 2^20 s (12 days) or more, above the
 * longest default (established, 5 days). native/core/ctop_core.h and
 * src/model/remaining.ts compute the same slots. */
#define CTOP_REMAIN_SLOTS 77
struct ctop_census_remain_key {
	__u32 netns;
	__u8 state;     /* enum tcp_conntrack */
	__u8 pad[3];
};
struct ctop_census_remain_val {
	__u64 slot[CTOP_REMAIN_SLOTS];
};

#endif
