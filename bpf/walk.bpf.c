// SPDX-License-Identifier: GPL-2.0
/*
 * ctop census: a walk of the conntrack hash (net/netfilter/nf_conntrack_core.c,
 * `struct hlist_nulls_head *nf_conntrack_hash`, one table shared by every
 * network namespace), to measure chain lengths instead of modelling them.
 *
 * Layout facts this relies on (stable since nulls lists came in, 2.6.29):
 *   - every bucket is a struct hlist_nulls_head { first }; an empty chain and
 *     the end of every chain is a "nulls marker", an odd value (v << 1) | 1,
 *     and conntrack sets v to the bucket's index (nf_ct_alloc_hashtable:
 *     INIT_HLIST_NULLS_HEAD(&hash[i], i));
 *   - a chain node is struct hlist_nulls_node { next, pprev } inside
 *     struct nf_conntrack_tuple_hash, two per entry (original and reply
 *     direction, each hashed into its own bucket);
 *   - for every node n, *(n->pprev) == n: pprev points at the previous
 *     node's `next` (offset 0, so at the previous node itself) or, for the
 *     first node, at its bucket head.
 *
 * Entries move under RCU while we read (SLAB_TYPESAFE_BY_RCU: the memory stays
 * an nf_conn, perhaps another one): a chain that ends in another bucket's
 * marker was left mid-walk; it is walked once more and, still wrong, counted
 * as inconsistent and left out. Every read is bpf_probe_read_kernel, so a bad
 * address costs an error, never a fault.
 *
 * Programs:
 *   ctop_walk_catch  tp_btf/net_dev_queue: remembers one confirmed entry's
 *                 original-direction node (any entry of any namespace: the
 *                 hash is global), attached only for a moment.
 *   ctop_walk_find   raw_tp, run with BPF_PROG_TEST_RUN: from that node, the
 *                 bucket index (its chain's marker) and the bucket head (back
 *                 along pprev), hence the table's address; or, where
 *                 /proc/kallsyms lists nf_conntrack_hash, reads the pointer.
 *   ctop_walk_chain   raw_tp, run with BPF_PROG_TEST_RUN over a bounded range of
 *                 buckets per run (bpf_loop), resumed by user space, so that
 *                 one run never holds a CPU for long.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "walk.h"

char LICENSE[] SEC("license") = "GPL";

#define CTINFO_MASK 7UL

/* ---- capture ------------------------------------------------------------ */
__u64 captured_node;

SEC("tp_btf/net_dev_queue")
int BPF_PROG(ctop_walk_catch, struct sk_buff *skb)
{
	unsigned long nfct = skb->_nfct;
	struct nf_conn *ct = (struct nf_conn *)(nfct & ~CTINFO_MASK);
	unsigned long status;

	if (!ct || captured_node)
		return 0;
	status = BPF_CORE_READ(ct, status);
	/* only entries in the hash: confirmed and not on their way out */
	if (!(status & IPS_CONFIRMED) || (status & IPS_DYING))
		return 0;
	captured_node = (__u64)ct + bpf_core_field_offset(struct nf_conn, tuplehash);
	return 0;
}

/* ---- locate -------------------------------------------------------------- */
__u64 locate_in;          /* a node, or (mode 1) the address of nf_conntrack_hash */
__u32 locate_mode;        /* 0: from a node; 1: read the pointer at locate_in */
__u64 located_base;
__u32 located_bucket;
__s32 locate_err;         /* CTOP_LOCATE_* */

static __always_inline int read_ptr(__u64 *dst, __u64 addr)
{
	return bpf_probe_read_kernel(dst, sizeof(*dst), (const void *)addr);
}

/* The two walks of ctop_walk_find, one step per bpf_loop callback: the
 * verifier checks a callback once, where a bounded loop of
 * CTOP_WALK_MAX_CHAIN steps is checked step by step (about 14,000
 * instructions and 5-7 ms of every census's start, against under 1,000). */
struct find_walk {
	__u64 p;    /* the node reached */
	__u64 q;    /* forward: what p points to (the marker, once odd) */
	int err;    /* CTOP_LOCATE_READ */
	int done;   /* backward: p is the bucket head */
};

/* forward from a node to its chain's nulls marker */
static long find_marker_step(__u32 i, void *ctx)
{
	struct find_walk *f = ctx;

	if (read_ptr(&f->q, f->p)) {
		f->err = CTOP_LOCATE_READ;
		return 1;
	}
	if (f->q & 1)
		return 1;
	f->p = f->q;
	return 0;
}

/* backward along pprev: p is a node exactly when *(p->pprev) == p */
static long find_head_step(__u32 i, void *ctx)
{
	struct find_walk *f = ctx;
	__u64 q, r;

	/* a head's "pprev" would be the next bucket's `first` (or past the
	 * table's end: unreadable), never a pointer back to p */
	if (read_ptr(&q, f->p + offsetof(struct hlist_nulls_node, pprev)) || (q & 1) || !q || read_ptr(&r, q) ||
	    r != f->p) {
		f->done = 1;
		return 1;
	}
	f->p = q;
	return 0;
}

SEC("raw_tp")
int ctop_walk_find(void *ctx)
{
	struct find_walk f = { .p = locate_in };
	__u64 node = locate_in;

	located_base = 0;
	locate_err = CTOP_LOCATE_OK;
	if (locate_mode == 1) {
		if (read_ptr(&located_base, node))
			locate_err = CTOP_LOCATE_READ;
		return 0;
	}
	/* forward to the marker: it names the bucket */
	bpf_loop(CTOP_WALK_MAX_CHAIN, find_marker_step, &f, 0);
	if (f.err) {
		locate_err = f.err;
		return 0;
	}
	if (!(f.q & 1)) {
		locate_err = CTOP_LOCATE_NO_MARKER;
		return 0;
	}
	located_bucket = (__u32)(f.q >> 1);
	/* backward to the head */
	if (read_ptr(&f.p, node + offsetof(struct hlist_nulls_node, pprev))) {
		locate_err = CTOP_LOCATE_READ;
		return 0;
	}
	bpf_loop(CTOP_WALK_MAX_CHAIN, find_head_step, &f, 0);
	if (!f.done) {
		locate_err = CTOP_LOCATE_NO_HEAD;
		return 0;
	}
	located_base = f.p - (__u64)located_bucket * sizeof(struct hlist_nulls_head);
	return 0;
}

/* ---- census maps ----------------------------------------------------------- */
/* Per-CPU maps: the walk runs on several CPUs at once (one bounded run per
 * BPF_PROG_TEST_RUN, each with preemption off on its CPU), and a table of one
 * busy port would otherwise make every CPU add to the same value, a cache line
 * bouncing between them on every entry. User space sums the CPUs' values.
 * No preallocation: per-CPU memory grows with the keys used, not with
 * max_entries times the CPUs; and a full map refuses an insert on its element
 * count, before any allocation. Sized by the loader (--max-addrs); one table per
 * map for all namespaces. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct ctop_census_key);
	__type(value, struct ctop_census_val);
} census_groups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 131072);
	__type(key, struct ctop_census_addr_key);
	__type(value, __u64);
} census_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, struct ctop_census_ovf_key);
	__type(value, __u64);
} census_overflow SEC(".maps");

/* TCP entries only, a few (namespace, state) keys: a shared hash with atomic
 * adds (a per-CPU copy of 616 bytes per CPU per key is not worth it) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024); /* namespaces x TCP states; 616 B each */
	__type(key, struct ctop_census_remain_key);
	__type(value, struct ctop_census_remain_val);
} census_remain SEC(".maps");

/* nf_conn.timeout is in jiffies; HZ from the kernel config (weak: 0 where
 * libbpf finds no config, and then no remaining timeouts are counted) */
extern int CONFIG_HZ __kconfig __weak;
__u32 census_remain_ok;
struct ctop_census_remain_val remain_zero;

/* ---- counting, one run at a time ------------------------------------------ */
/* What the census needs of one entry, read by either walker. */
struct entry_facts {
	struct ctop_census_key k;
	__u32 timeout;          /* nf_conn.timeout (jiffies), TCP only */
	__u8 src[16] __attribute__((aligned(8)));  /* original direction's addresses */
	__u8 dst[16];
	__u8 assured, unreplied;
};

/* Counts gathered within one run before they go to the hash maps: a table's
 * entries come in few groups and, often, from few addresses, so most entries
 * add to a slot here (a few plain adds on this CPU's array) instead of a hash
 * lookup each. Direct-mapped by a hash of the key; a slot wanted by another key
 * is flushed into the map first, and every slot is flushed when the run ends,
 * so the maps hold every count exactly once a run has returned. */
#define GROUP_SLOTS 64   /* powers of two */
#define ADDR_SLOTS 256
struct group_slot {
	struct ctop_census_key k;
	__u32 pad;
	struct ctop_census_val v;   /* v.entries == 0: the slot is free */
};
struct addr_slot {
	struct ctop_census_addr_key k;
	__u64 n;                    /* 0: free */
};
struct census_cache {
	struct group_slot g[GROUP_SLOTS];
	struct addr_slot a[ADDR_SLOTS];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct census_cache);
} census_cache SEC(".maps");

/* ---- walk ----------------------------------------------------------------- */
/* Set by user space before the walk, read-only while it runs. */
__u64 walk_base;
__u32 walk_size;   /* nf_conntrack_htable_size */
__u32 census_enabled;
__u32 census_addrs_enabled;
/* tests: every chain walked a second time alone, as one that moved would be */
__u32 walk_rewalk_all;

/* What one CPU's runs found, summed by user space over the CPUs (walk.h). A
 * run holds its CPU (preemption off) from start to end, so a run owns its
 * CPU's slot; runs of another thread on the same CPU come strictly before
 * or after it. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ctop_walk_stats);
} walk_stats SEC(".maps");

static __always_inline struct ctop_walk_stats *stats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&walk_stats, &zero);
}

static __always_inline struct census_cache *cache(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&census_cache, &zero);
}

#define EEXIST 17

/* Adds n to this CPU's value of key in a per-CPU hash of u64 values, inserting
 * the key when new. 0, or the insert's error (-E2BIG: the map is full). Another
 * CPU may insert the same key between our lookup and insert (-EEXIST): then
 * the key is there, with this CPU's value zero, and the lookup is repeated. */
static long percpu_add(void *map, const void *key, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(map, key);
	long err;

	if (v) {
		*v += n;
		return 0;
	}
	err = bpf_map_update_elem(map, key, &n, BPF_NOEXIST);
	if (err != -EEXIST)
		return err;
	v = bpf_map_lookup_elem(map, key);
	if (!v)
		return -EEXIST;
	*v += n;
	return 0;
}

static void add_overflow(__u32 netns, __u32 what, __u64 n)
{
	struct ctop_census_ovf_key k = { .netns = netns, .what = what };

	percpu_add(&census_overflow, &k, n);
}

/* A group slot's counts into census_groups (this CPU's value); the slot is freed. */
static void group_flush(struct group_slot *s)
{
	struct ctop_census_val *v = bpf_map_lookup_elem(&census_groups, &s->k);

	if (!v) {
		long err = bpf_map_update_elem(&census_groups, &s->k, &s->v, BPF_NOEXIST);

		if (err == -EEXIST)
			v = bpf_map_lookup_elem(&census_groups, &s->k);
		else if (err)
			add_overflow(s->k.netns, 2, s->v.entries);
	}
	if (v) {
		v->entries += s->v.entries;
		v->assured += s->v.assured;
		v->unreplied += s->v.unreplied;
	}
	s->v.entries = 0;
	s->v.assured = 0;
	s->v.unreplied = 0;
}

/* An address slot's count into census_addrs; the slot is freed. */
static void addr_flush(struct ctop_walk_stats *st, struct addr_slot *s)
{
	__u64 n = s->n, *v;

	s->n = 0;
	/* once an insert found the table full, a new address is overflow at the
	 * cost of one lookup: no further insert is tried (the table only fills
	 * during a walk) */
	if (st->addrs_full) {
		v = bpf_map_lookup_elem(&census_addrs, &s->k);
		if (v) {
			*v += n;
			return;
		}
	} else if (!percpu_add(&census_addrs, &s->k, n)) {
		return;
	} else {
		st->addrs_full = 1;
	}
	add_overflow(s->k.netns, s->k.dir, n);
}

static __always_inline __u32 mix32(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	return h;
}

static __always_inline void group_add(struct census_cache *c, const struct entry_facts *f)
{
	const __u32 *w = (const __u32 *)&f->k;
	__u32 i = mix32(w[0] * 0x9e3779b1u ^ w[1] ^ w[2] * 0xc2b2ae35u) & (GROUP_SLOTS - 1);
	struct group_slot *s = &c->g[i];
	__u32 *sw = (__u32 *)&s->k;

	if (s->v.entries && (sw[0] != w[0] || sw[1] != w[1] || sw[2] != w[2]))
		group_flush(s);
	if (!s->v.entries)
		s->k = f->k;
	s->v.entries++;
	s->v.assured += f->assured;
	s->v.unreplied += f->unreplied;
}

static __always_inline void addr_add(struct ctop_walk_stats *st, struct census_cache *c, const struct entry_facts *f,
				     __u8 dir, const __u8 *addr)
{
	const __u64 *a = (const __u64 *)addr;
	__u64 x = a[0] ^ a[1];
	__u32 i = mix32((__u32)x * 0x9e3779b1u ^ (__u32)(x >> 32) ^ f->k.netns * 0xc2b2ae35u ^ dir) & (ADDR_SLOTS - 1);
	struct addr_slot *s = &c->a[i];
	__u64 *sa = (__u64 *)s->k.addr;

	if (s->n && (sa[0] != a[0] || sa[1] != a[1] || s->k.netns != f->k.netns || s->k.dir != dir ||
		     s->k.family != f->k.family))
		addr_flush(st, s);
	if (!s->n) {
		s->k.netns = f->k.netns;
		s->k.family = f->k.family;
		s->k.dir = dir;
		sa[0] = a[0];
		sa[1] = a[1];
	}
	s->n++;
}

static long flush_group_cb(__u32 i, void *ctx)
{
	struct census_cache *c = cache();

	if (!c)
		return 1;
	if (c->g[i & (GROUP_SLOTS - 1)].v.entries)
		group_flush(&c->g[i & (GROUP_SLOTS - 1)]);
	return 0;
}

static long flush_addr_cb(__u32 i, void *ctx)
{
	struct census_cache *c = cache();
	struct ctop_walk_stats *st = stats();

	if (!c || !st)
		return 1;
	if (c->a[i & (ADDR_SLOTS - 1)].n)
		addr_flush(st, &c->a[i & (ADDR_SLOTS - 1)]);
	return 0;
}

/* Every count of the run into the maps, at the run's end. */
static void census_flush(void)
{
	bpf_loop(GROUP_SLOTS, flush_group_cb, NULL, 0);
	if (census_addrs_enabled)
		bpf_loop(ADDR_SLOTS, flush_addr_cb, NULL, 0);
}

/* slot of r seconds (walk.h) */
static __u32 remain_slot(__u64 r)
{
	__u32 e = 0;

	if (r < 4)
		return (__u32)r;
	/* floor(log2 r), bounded: at most 63 steps */
	for (int i = 0; i < 63; i++) {
		if ((r >> (e + 1)) == 0)
			break;
		e++;
	}
	if (e > 19)
		return CTOP_REMAIN_SLOTS - 1;
	return 4 * (e - 1) + (__u32)((r >> (e - 2)) & 3);
}

/* Seconds left on a TCP entry (nf_ct_expires: timeout - nfct_time_stamp,
 * where nfct_time_stamp is (u32)jiffies), into its state's histogram. */
static void add_remaining(__u32 netns, __u8 state, __u32 timeout)
{
	struct ctop_census_remain_key k = { .netns = netns, .state = state };
	struct ctop_census_remain_val *v;
	__s32 left = (__s32)(timeout - (__u32)bpf_jiffies64());
	__u64 secs = left > 0 ? (__u64)left / (__u32)CONFIG_HZ : 0;
	__u32 slot = remain_slot(secs);

	v = bpf_map_lookup_elem(&census_remain, &k);
	if (!v) {
		/* too big for the stack: an all-zero value in .bss */
		bpf_map_update_elem(&census_remain, &k, &remain_zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&census_remain, &k);
		if (!v) {
			add_overflow(netns, 3, 1); /* the table of (namespace, state) pairs is full */
			return;
		}
	}
	if (slot < CTOP_REMAIN_SLOTS)
		__sync_fetch_and_add(&v->slot[slot], 1);
}

/* One entry's facts into this run's counts. */
static void census_add(struct ctop_walk_stats *st, const struct entry_facts *f)
{
	struct census_cache *c = cache();

	if (!c)
		return;
	st->census_entries++;
	group_add(c, f);
	if (f->k.proto == IPPROTO_TCP && CONFIG_HZ > 0)
		add_remaining(f->k.netns, f->k.state, f->timeout);
	if (census_addrs_enabled) {
		addr_add(st, c, f, 0, f->src);
		addr_add(st, c, f, 1, f->dst);
	}
}

/* The key's protocol part, from the tuple's protocol number and destination
 * port (network order). */
static __always_inline void key_proto(struct entry_facts *f, __u8 proto, __u16 dport_be)
{
	f->k.proto = proto;
	f->k.state = 0xff;
	switch (proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
	case IPPROTO_SCTP:
	case IPPROTO_DCCP:
		f->k.port = bpf_ntohs(dport_be);
		break;
	}
}

/* ---- the walk ------------------------------------------------------------------ */
/*
 * LANES chains are walked side by side, one node of each per step: their loads
 * do not depend on each other, so the CPU has up to LANES cache misses in
 * flight where one chain alone has one (each node is in another slab object).
 * Kernel memory is read in one of two ways, one program each (the loader loads
 * one of them; both count the same):
 *   ctop_walk_chain_direct  Linux >= 6.2: plain loads through bpf_rdonly_cast's
 *                 untrusted typed pointers, one instruction each, which the JIT
 *                 guards with an exception-table entry (an address that does not
 *                 map reads as 0); the kfunc itself is inlined;
 *   ctop_walk_chain  every kernel with bpf_loop (5.17): bpf_probe_read_kernel,
 *                 a helper call per read.
 * The functions below take `direct` as a constant, so each program holds only
 * its own reads (the probe-read program never names the kfunc).
 */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

/* 8 bytes at addr, as a number: read through struct in6_addr, whose first 16
 * bytes are a byte array, which the verifier lets a program read at any offset
 * and size as a number (a pointer-typed field, such as a node's `next`, would
 * come back as a pointer, on which no bit can be tested). */
static __always_inline __u64 ld_u64(__u64 addr)
{
	return *(__u64 *)bpf_rdonly_cast((void *)addr, bpf_core_type_id_kernel(struct in6_addr));
}

static __always_inline __u64 read_u64(__u64 addr, const bool direct)
{
	__u64 v = 0;

	if (direct)
		return ld_u64(addr);
	bpf_probe_read_kernel(&v, sizeof(v), (const void *)addr);
	return v;
}

/* Not a node: odd like a marker, and the marker of no bucket (a read that
 * failed gives 0, which would otherwise be followed as a node). */
#define NOT_A_NODE (~0ULL)

static __always_inline __u64 next_of(__u64 p, const bool direct)
{
	__u64 q = read_u64(p, direct);

	return q ? q : NOT_A_NODE;
}

#define LANES 8 /* a power of two: lane indexes are masked with LANES - 1 */
_Static_assert((LANES & (LANES - 1)) == 0, "LANES is a power of two");
struct lanes {
	__u64 p[LANES];         /* each lane's cursor: a node, or its chain's end */
	__u32 len[LANES];
	__u64 sink;             /* the status words read ahead, kept so that the loads stay */
	__u64 node[LANES][CTOP_WALK_MAX_CHAIN];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lanes);
} lanes SEC(".maps");

static __always_inline struct lanes *lanes_of_cpu(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&lanes, &zero);
}

/* One step of every lane: a lane still on a node records it and moves to its
 * next. 1 (stop) once every lane is at its chain's end.
 *
 * With plain loads, for a census, it also reads the word at the node plus
 * (status - tuplehash[0]) now, beside the next pointer, so that the miss on
 * that cache line overlaps the others of the step instead of coming alone when
 * the entry is counted: for an original-direction node that word is the
 * entry's status (read again there, then from cache); for a reply node it lies
 * in the same line further on (tuplehash[1] is sizeof(struct
 * nf_conntrack_tuple_hash) after tuplehash[0]), a load that is wasted but
 * overlapped. At 1,000,000 entries here: 157 -> 130 ms for a census on one CPU.
 * With helper reads the extra call costs more than the miss it hides (205 ->
 * 231 ns per entry), so the probe-read walk does not read ahead. */
static __always_inline long lane_step(__u32 s, const bool direct)
{
	struct lanes *l = lanes_of_cpu();
	__u64 ends = 1, ahead = 0;
	__u32 census = direct && census_enabled;
	__u64 status_off = bpf_core_field_offset(struct nf_conn, status) - bpf_core_field_offset(struct nf_conn, tuplehash);

	if (!l)
		return 1;
	asm volatile("" : "+r"(s));
	s &= CTOP_WALK_MAX_CHAIN - 1;
#pragma unroll
	for (int j = 0; j < LANES; j++) {
		__u64 p = l->p[j];

		if (!(p & 1)) {
			l->node[j][s] = p;
			l->len[j] = s + 1;
			l->p[j] = next_of(p, direct);
			if (direct && census)
				ahead ^= ld_u64(p + status_off);
		}
	}
	l->sink = ahead;
#pragma unroll
	for (int j = 0; j < LANES; j++)
		ends &= l->p[j];
	return ends & 1;
}

static long lane_step_direct(__u32 s, void *ctx)
{
	return lane_step(s, true);
}

static long lane_step_probe(__u32 s, void *ctx)
{
	return lane_step(s, false);
}

/* One bucket's chain again, alone, into its lane's row (bpf_loop: the
 * verifier checks one step, not every step of the longest chain). */
struct rewalk_ctx {
	__u64 p;
	__u32 lane;
	__u32 len;
};

static __always_inline long rewalk_step(__u32 i, struct rewalk_ctx *rc, const bool direct)
{
	struct lanes *l = lanes_of_cpu();

	if (!l || (rc->p & 1))
		return 1;
	asm volatile("" : "+r"(i));
	l->node[rc->lane & (LANES - 1)][i & (CTOP_WALK_MAX_CHAIN - 1)] = rc->p;
	rc->len = i + 1;
	rc->p = next_of(rc->p, direct);
	return 0;
}

static long rewalk_step_direct(__u32 i, void *ctx)
{
	return rewalk_step(i, ctx, true);
}

static long rewalk_step_probe(__u32 i, void *ctx)
{
	return rewalk_step(i, ctx, false);
}

/* Its length, or -1 when it does not end in b's marker. */
static __always_inline int chain_len_alone(__u32 b, __u32 lane, const bool direct)
{
	struct rewalk_ctx rc = { .p = next_of(walk_base + (__u64)b * sizeof(struct hlist_nulls_head), direct), .lane = lane };

	bpf_loop(CTOP_WALK_MAX_CHAIN, direct ? rewalk_step_direct : rewalk_step_probe, &rc, 0);
	return rc.p == (((__u64)b << 1) | 1) ? (int)rc.len : -1;
}

/* Count one entry, given its node; only original-direction nodes count, so
 * that every entry counts once. */
static void census_node(struct ctop_walk_stats *st, __u64 node)
{
	struct nf_conntrack_tuple_hash *h = (void *)node;
	struct nf_conntrack_tuple t;
	struct entry_facts f = {};
	struct nf_conn *ct;
	unsigned long status;
	__u64 net;

	/* the tuple's own layout (addresses, ports, l3num, protonum, dir) has
	 * not changed since nf_conntrack_tuple.h was written; its place in the
	 * tuple hash is relocated */
	if (bpf_core_read(&t, sizeof(t), &h->tuple))
		return;
	if (t.dst.dir != 0) /* IP_CT_DIR_ORIGINAL */
		return;
	ct = (struct nf_conn *)(node - bpf_core_field_offset(struct nf_conn, tuplehash));
	if (bpf_core_read(&status, sizeof(status), &ct->status) || bpf_core_read(&net, sizeof(net), &ct->ct_net.net))
		return;
	/* one-entry cache: entries of one namespace come in runs */
	if (net != st->last_net) {
		st->last_inum = BPF_CORE_READ((struct net *)net, ns.inum);
		st->last_net = net;
	}
	f.k.netns = st->last_inum;
	f.k.family = (__u8)t.src.l3num;
	key_proto(&f, t.dst.protonum, t.dst.u.all);
	if (f.k.proto == IPPROTO_TCP) {
		f.k.state = BPF_CORE_READ(ct, proto.tcp.state);
		f.timeout = BPF_CORE_READ(ct, timeout);
	}
	f.assured = (status & IPS_ASSURED) ? 1 : 0;
	f.unreplied = (status & IPS_SEEN_REPLY) ? 0 : 1;
	__builtin_memcpy(f.src, &t.src.u3, 16);
	__builtin_memcpy(f.dst, &t.dst.u3, 16);
	census_add(st, &f);
}

static __always_inline __u32 ld_u32(__u64 addr)
{
	return *(__u32 *)bpf_rdonly_cast((void *)addr, bpf_core_type_id_kernel(struct in6_addr));
}

static __always_inline __u8 ld_u8(__u64 addr)
{
	return *(__u8 *)bpf_rdonly_cast((void *)addr, bpf_core_type_id_kernel(struct in6_addr));
}

/* One entry, from its node; only original-direction nodes count. The tuple is
 * read through its own type; the entry's other fields at their CO-RE offsets
 * in struct nf_conn, not through that type: the kernel's BTF also has
 * struct nf_conn___init, which libbpf would take for another candidate of the
 * same name when resolving nf_conn's type id. */
static void census_node_direct(struct ctop_walk_stats *st, __u64 node)
{
	struct nf_conntrack_tuple_hash *h = bpf_rdonly_cast((void *)node, bpf_core_type_id_kernel(struct nf_conntrack_tuple_hash));
	__u64 ct = node - bpf_core_field_offset(struct nf_conn, tuplehash);
	struct entry_facts f = {};
	__u64 status;

	if (h->tuple.dst.dir != 0) /* IP_CT_DIR_ORIGINAL */
		return;
	status = ld_u64(ct + bpf_core_field_offset(struct nf_conn, status));
	/* the namespace of the last entries is in cache: a dependent load costs
	 * little next to the entry's own misses */
	f.k.netns = ld_u32(ld_u64(ct + bpf_core_field_offset(struct nf_conn, ct_net.net)) +
			   bpf_core_field_offset(struct net, ns.inum));
	f.k.family = (__u8)h->tuple.src.l3num;
	key_proto(&f, h->tuple.dst.protonum, h->tuple.dst.u.all);
	if (f.k.proto == IPPROTO_TCP) {
		f.k.state = ld_u8(ct + bpf_core_field_offset(struct nf_conn, proto.tcp.state));
		f.timeout = ld_u32(ct + bpf_core_field_offset(struct nf_conn, timeout));
	}
	f.assured = (status & IPS_ASSURED) ? 1 : 0;
	f.unreplied = (status & IPS_SEEN_REPLY) ? 0 : 1;
	__builtin_memcpy(f.src, &h->tuple.src.u3, 16);
	__builtin_memcpy(f.dst, &h->tuple.dst.u3, 16);
	census_add(st, &f);
}

/* A walked chain's length into the statistics. */
static __always_inline void chain_stats(struct ctop_walk_stats *st, __u32 len)
{
	__u32 idx = len;

	if (idx >= CTOP_WALK_HIST)
		idx = CTOP_WALK_HIST - 1;
	/* clang may test one copy and index with another: a mask the verifier
	 * sees where the index is used (CTOP_WALK_HIST is a power of two) */
	asm volatile("" : "+r"(idx));
	st->hist[idx & (CTOP_WALK_HIST - 1)]++;
	st->nodes += len;
	if (len > st->longest)
		st->longest = len;
}

struct lane_ctx {
	__u32 lane;
};

static __always_inline long census_lane(__u32 i, struct lane_ctx *lc, const bool direct)
{
	struct lanes *l = lanes_of_cpu();
	struct ctop_walk_stats *st = stats();
	__u64 node;

	if (!l || !st)
		return 1;
	asm volatile("" : "+r"(i));
	node = l->node[lc->lane & (LANES - 1)][i & (CTOP_WALK_MAX_CHAIN - 1)];
	if (direct)
		census_node_direct(st, node);
	else
		census_node(st, node);
	return 0;
}

static long census_lane_direct(__u32 i, void *ctx)
{
	return census_lane(i, ctx, true);
}

static long census_lane_probe(__u32 i, void *ctx)
{
	return census_lane(i, ctx, false);
}

/* A lane's chain after the steps: counted when it ends in its own bucket's
 * marker; one that does not (entries move under RCU) is walked once more
 * alone and, still wrong, counted as inconsistent and left out. */
struct finish_ctx {
	__u32 b0, end;
};

static __always_inline long finish_lane(__u32 j, struct finish_ctx *fc, const bool direct)
{
	struct ctop_walk_stats *st = stats();
	struct lanes *l = lanes_of_cpu();
	struct lane_ctx lc = { .lane = j };
	__u32 b = fc->b0 + j;
	int len;

	if (!st || !l || b >= fc->end)
		return 1;
	st->done++;
	if (l->p[j & (LANES - 1)] == (((__u64)b << 1) | 1) && !walk_rewalk_all) {
		len = (int)l->len[j & (LANES - 1)];
	} else {
		st->rewalked++;
		len = chain_len_alone(b, j, direct);
		if (len < 0) {
			st->inconsistent++;
			return 0;
		}
	}
	chain_stats(st, (__u32)len);
	if (census_enabled && len > 0)
		bpf_loop((__u32)len, direct ? census_lane_direct : census_lane_probe, &lc, 0);
	return 0;
}

static long finish_lane_direct(__u32 j, void *ctx)
{
	return finish_lane(j, ctx, true);
}

static long finish_lane_probe(__u32 j, void *ctx)
{
	return finish_lane(j, ctx, false);
}

/* LANES buckets from b0 on (those inside the run and the table), walked side
 * by side. */
static __always_inline long walk_lanes(__u32 g, const bool direct)
{
	struct ctop_walk_stats *st = stats();
	struct lanes *l = lanes_of_cpu();
	struct finish_ctx fc;

	if (!st || !l)
		return 1;
	fc.b0 = st->run_start + g * LANES;
	fc.end = st->run_end < walk_size ? st->run_end : walk_size;
	if (fc.b0 >= fc.end)
		return 1;
#pragma unroll
	for (int j = 0; j < LANES; j++) {
		__u32 b = fc.b0 + j;

		/* a lane past the end starts at its own marker: nothing to walk */
		l->p[j] = b < fc.end ? next_of(walk_base + (__u64)b * sizeof(struct hlist_nulls_head), direct)
				     : (((__u64)b << 1) | 1);
		l->len[j] = 0;
	}
	bpf_loop(CTOP_WALK_MAX_CHAIN, direct ? lane_step_direct : lane_step_probe, NULL, 0);
	bpf_loop(LANES, direct ? finish_lane_direct : finish_lane_probe, &fc, 0);
	return 0;
}

static long walk_lanes_direct(__u32 g, void *ctx)
{
	return walk_lanes(g, true);
}

static long walk_lanes_probe(__u32 g, void *ctx)
{
	return walk_lanes(g, false);
}

/* sizeof(struct nf_conn) in the running kernel (a CO-RE relocation against its
 * BTF): the census's entry size, without parsing the BTF a second time */
__u32 nf_conn_bytes;

/* One run: buckets [ctx[0], ctx[0] + ctx[1]) (BPF_PROG_TEST_RUN's ctx_in,
 * so that runs on several CPUs at once each get their own range). */
static __always_inline int walk_run(__u64 *ctx, const bool direct)
{
	struct ctop_walk_stats *st = stats();

	if (!st)
		return 0;
	nf_conn_bytes = bpf_core_type_size(struct nf_conn);
	census_remain_ok = CONFIG_HZ > 0;
	st->run_start = (__u32)ctx[0];
	st->run_end = (__u32)(ctx[0] + ctx[1]);
	bpf_loop((__u32)((ctx[1] + LANES - 1) / LANES), direct ? walk_lanes_direct : walk_lanes_probe, NULL, 0);
	if (census_enabled)
		census_flush();
	return 0;
}

SEC("raw_tp")
int ctop_walk_chain(__u64 *ctx)
{
	return walk_run(ctx, false);
}

SEC("raw_tp")
int ctop_walk_chain_direct(__u64 *ctx)
{
	return walk_run(ctx, true);
}
