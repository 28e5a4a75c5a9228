/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every struct that crosses the kernel/user boundary lives here: fixed-width
 * fields, explicit padding, no implicit holes. native/ includes this file,
 * static_asserts the sizes and hands the offsets to the TypeScript decoder,
 * which compares them at start-up.
 */
#ifndef CTOP_H
#define CTOP_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define CTOP_ADDR_LEN 16

/* Per-port counters: one key per (namespace, family, protocol, port). */
struct ctop_port_key {
	__u32 netns;  /* network namespace inode number (as in /proc/PID/ns/net) */
	__u8 family;  /* AF_INET 2 or AF_INET6 10 */
	__u8 proto;   /* IPPROTO_*: 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, 132 SCTP, ... */
	__u16 port;   /* host order; destination port of the original direction,
	               * ICMP/ICMPv6 type, 0 for protocols without ports */
};

/* Per-5-tuple counters, original direction as conntrack records it. */
struct ctop_tuple_key {
	__u32 netns;
	__u8 family;
	__u8 proto;
	__u16 sport;  /* host order; ICMP echo id */
	__u16 dport;  /* host order; ICMP type */
	__u16 pad;    /* always 0: keys are compared bytewise */
	__u8 saddr[CTOP_ADDR_LEN]; /* IPv4 in the first 4 bytes, rest 0 */
	__u8 daddr[CTOP_ADDR_LEN];
};

/*
 * New flows' tuples: a ring per CPU, in one memory-mappable array (CPU c owns
 * slots [c << ring_bits, (c + 1) << ring_bits)). The hot path claims a
 * position with an add on its CPU's head, writes the key, then the slot's
 * seq, ordered after the key (a release store: publish_seq() in
 * ctop.bpf.c); nothing is locked or allocated. User space reads the rings in place (native/core/tuple_ring.c)
 * and hands every position out once: as a tuple, or, if the ring wrapped
 * past it before the read, as tuple overflow. So reported + overflow = inserts.
 */
struct ctop_tuple_slot {
	struct ctop_tuple_key key;
	__u32 pad;
	__u64 seq; /* 1 + the ring position last written here; 0: never written */
};

/* One per CPU, a cache line each: positions claimed so far on that CPU. */
struct ctop_ring_head {
	__u64 next;
	__u64 pad[7];
};

/* Value of the per-tuple drop map. `count` only grows (the hot path adds to it);
 * `reported` is what ctop_collect_moved last handed to user space, so a read
 * returns only the tuples that moved since the previous read, each with its
 * growth, without copying the untouched rest. */
struct ctop_tuple_val {
	__u64 count;
	__u64 reported;
};

/* What ctop_collect_moved writes to moved_out per moved tuple. */
struct ctop_tuple_moved {
	struct ctop_tuple_key key;
	__u32 pad;
	__u64 grew; /* count - reported at the read */
};

/* How a new entry came to be, seen where it is confirmed (src/model/roles.ts
 * names them for user space, in this order). */
enum ctop_role {
	CTOP_ROLE_SERVER = 0,  /* received from elsewhere, delivered to a local socket */
	CTOP_ROLE_CLIENT = 1,  /* sent by a local socket out of a non-loopback device */
	CTOP_ROLE_LOCAL = 2,   /* both ends in this namespace (out of loopback) */
	CTOP_ROLE_FORWARD = 3, /* received on one device and routed out of another */
	CTOP_ROLE_COUNT = 4,
};

/* Value of the per-port map. The role of an insert is a slot in the same
 * value, so counting it costs no extra map operation; the port's inserts are
 * the sum of the four. */
struct ctop_counts {
	__u64 inserts_by_role[CTOP_ROLE_COUNT]; /* new entries about to be confirmed */
	__u64 drops; /* packets conntrack refused (table full or tracker drop) */
};

/* Per-CPU direct-mapped slots in front of the per-port hash, so that the
 * hot path counts a port without a hash lookup: a key's slot is a multiply
 * and a shift of its 8 bytes (ctop_port_slot_index). On each CPU a slot
 * belongs to the first key that lands in it, for good; another key landing
 * there is counted in the hash (port_counts) instead. Each event is counted
 * in exactly one place; the reader adds slots and hash per key. */
#define CTOP_PORT_SLOTS_BITS 10
#define CTOP_PORT_SLOTS (1U << CTOP_PORT_SLOTS_BITS)
struct ctop_port_slot {
	__u64 key; /* struct ctop_port_key's 8 bytes; 0: free (family is never 0) */
	struct ctop_counts counts;
};

static inline __u32 ctop_port_slot_index(__u64 key)
{
	return (__u32)((key * 0x9E3779B97F4A7C15ULL) >> (64 - CTOP_PORT_SLOTS_BITS));
}

/* Per-port entry life cycle, counted by the function tiers (fentry, kprobe)
 * in the per-CPU `port_events` map, keyed like port_counts. */
struct ctop_port_events {
	/* live entries: not counted by the programs (0 in the map), filled in by
	 * the reader as the port's inserts (port_counts, every role) minus
	 * `deletes`, modulo 2^64 (so an insert costs one count, not two) */
	__u64 entries;
	__u64 deletes;       /* entries that left the table */
	__u64 early_drops;   /* of which evicted by early_drop() (table full) */
	__u64 insert_failed; /* confirms refused (insert_failed statistic) */
	__u64 clashes;       /* confirms resolved after a race (clash_resolve) */
};

/* Per-CPU direct-mapped slots in front of port_events, as struct
 * ctop_port_slot is in front of port_counts (same index, same rule: a slot
 * belongs to the first key that lands in it on that CPU; the reader adds
 * slots and hash per key). */
struct ctop_port_event_slot {
	__u64 key; /* struct ctop_port_key's 8 bytes; 0: free */
	struct ctop_port_events events;
};

/* Default map sizes (--max-ports, --max-tuples, --max-drop-tuples): the
 * programs' declared sizes and the loader's defaults; the addon exports them
 * (`mapDefaults`) for a check against the command line's. */
#define CTOP_DEFAULT_MAX_PORTS 8192
#define CTOP_DEFAULT_MAX_TUPLES 16384
#define CTOP_DEFAULT_MAX_DROP_TUPLES 4096

/* Probe tiers, best first (the order the loader tries them). */
enum ctop_tier {
	CTOP_TIER_FENTRY = 0,    /* fentry/fexit on the conntrack functions */
	CTOP_TIER_KPROBE = 1,    /* kprobe/kretprobe on the same functions */
	CTOP_TIER_NETFILTER = 2, /* BPF netfilter hook + tp_btf/kfree_skb (>= 6.4) */
	CTOP_TIER_COUNT = 3,
};

/* Index of the `full` array: set once a map refused an insert. Entries are
 * never deleted, so a full map stays full: later events skip straight to the
 * overflow counter instead of paying a lookup and a failing update. */
enum ctop_full {
	CTOP_FULL_PORTS = 0,
	CTOP_FULL_TUPLE_INSERTS = 1, /* unused: inserts go to the rings */
	CTOP_FULL_TUPLE_DROPS = 2,
	CTOP_FULL_EVENTS = 3,
	CTOP_FULL_COUNT = 4,
};

/* Indexes of the per-CPU `totals` array. Cumulative, never reset. */
enum ctop_total {
	/* every insert seen, whether or not a map had room for it: filled in
	 * by the reader from the rings' heads (each insert claims one ring
	 * position), so the programs keep no separate count */
	CTOP_TOTAL_INSERTS = 0,
	/* every conntrack drop seen (the kernel's `drop` statistic) */
	CTOP_TOTAL_DROPS = 1,
	/* events that found the per-port map full */
	CTOP_TOTAL_PORT_OVERFLOW = 2,
	/* inserts whose tuple the reader never saw: their CPU's ring wrapped
	 * past them before a read (filled in by the reader, not the kernel) */
	CTOP_TOTAL_TUPLE_OVERFLOW = 3,
	/* drops whose packet headers could not be read: in DROPS, not per port */
	CTOP_TOTAL_DROP_UNPARSED = 4,
	/* drops in a namespace the drop_seen map had no room for: not counted */
	CTOP_TOTAL_NETNS_OVERFLOW = 5,
	/* netfilter drops of untracked packets that conntrack did not cause
	 * (raw-table rules, `ct state invalid drop`): seen and left out */
	CTOP_TOTAL_OTHER_NF_DROPS = 6,
	/* drops that found the per-tuple drop map full */
	CTOP_TOTAL_DROP_TUPLE_OVERFLOW = 7,
	/* ring slots written at least once (filled in by the reader) */
	CTOP_TOTAL_TUPLE_ENTRIES = 8,
	/* entries in the per-tuple drop map (never deleted, so counting the
	 * successful inserts tells it without reading the map) */
	CTOP_TOTAL_DROP_TUPLE_ENTRIES = 9,
	/* Function tiers (fentry, kprobe) only; 0 in the netfilter tier. */
	/* entries that left the hash table (timeout, eviction, flush, RST) */
	CTOP_TOTAL_DELETES = 10,
	/* entries evicted by early_drop() to make room (the kernel's early_drop statistic) */
	CTOP_TOTAL_EARLY_DROPS = 11,
	/* confirms that failed (the kernel's insert_failed statistic) */
	CTOP_TOTAL_INSERT_FAILED = 12,
	/* confirms that lost a race and were resolved (clash_resolve statistic) */
	CTOP_TOTAL_CLASHES = 13,
	/* events that found the per-port event map full */
	CTOP_TOTAL_EVENTS_OVERFLOW = 14,
	CTOP_TOTAL_COUNT = 15, /* array size */
};

#endif /* CTOP_H */
