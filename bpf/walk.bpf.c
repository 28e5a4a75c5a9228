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

/* The nodes of the chain being walked, so that a chain is counted only once
 * it proved consistent. */
struct chain_scratch {
	__u64 node[CTOP_WALK_MAX_CHAIN];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct chain_scratch);
} scratch SEC(".maps");

/* ---- walk ----------------------------------------------------------------- */
/* Set by user space before the walk, read-only while it runs. */
__u64 walk_base;
__u32 walk_size;   /* nf_conntrack_htable_size */
__u32 census_enabled;
__u32 census_addrs_enabled;

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

/* Chain length of bucket b, or -1 when the chain does not end in b's
 * marker. With sc, the nodes are kept there. */
static int chain_len(__u32 b, struct chain_scratch *sc)
{
	__u64 p;
	int i;

	if (read_ptr(&p, walk_base + (__u64)b * sizeof(struct hlist_nulls_head)))
		return -1;
	for (i = 0; i < CTOP_WALK_MAX_CHAIN; i++) {
		if (p & 1)
			return (p >> 1) == b ? i : -1;
		if (sc)
			sc->node[i] = p;
		if (read_ptr(&p, p))
			return -1;
	}
	return -1;
}

#define EEXIST 17

/* Adds one to this CPU's value of key in a per-CPU hash, inserting the key
 * when new. 0, or the insert's error (-E2BIG: the map is full). Another CPU
 * may insert the same key between our lookup and insert (-EEXIST): then the
 * key is there, with this CPU's value zero, and the lookup is repeated. */
static long percpu_add(void *map, const void *key, void *one)
{
	__u64 *v = bpf_map_lookup_elem(map, key);
	long err;

	if (v) {
		*v += 1;
		return 0;
	}
	err = bpf_map_update_elem(map, key, one, BPF_NOEXIST);
	if (err != -EEXIST)
		return err;
	v = bpf_map_lookup_elem(map, key);
	if (!v)
		return -EEXIST;
	*v += 1;
	return 0;
}

static void add_overflow(__u32 netns, __u32 what)
{
	struct ctop_census_ovf_key k = { .netns = netns, .what = what };
	__u64 one = 1;

	percpu_add(&census_overflow, &k, &one);
}

static void add_addr(struct ctop_walk_stats *st, __u32 netns, __u8 family, __u8 dir, const union nf_inet_addr *a)
{
	struct ctop_census_addr_key k = { .netns = netns, .family = family, .dir = dir };
	__u64 one = 1, *v;

	__builtin_memcpy(k.addr, a, sizeof(k.addr));
	/* once an insert found the table full, a new address is overflow at the
	 * cost of one lookup: no further insert is tried (the table only fills
	 * during a walk) */
	if (st->addrs_full) {
		v = bpf_map_lookup_elem(&census_addrs, &k);
		if (v) {
			*v += 1;
			return;
		}
	} else if (!percpu_add(&census_addrs, &k, &one)) {
		return;
	} else {
		st->addrs_full = 1;
	}
	add_overflow(netns, dir);
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
static void add_remaining(__u32 netns, __u8 state, struct nf_conn *ct)
{
	struct ctop_census_remain_key k = { .netns = netns, .state = state };
	struct ctop_census_remain_val *v;
	__u32 timeout = BPF_CORE_READ(ct, timeout);
	__s32 left = (__s32)(timeout - (__u32)bpf_jiffies64());
	__u64 secs = left > 0 ? (__u64)left / (__u32)CONFIG_HZ : 0;
	__u32 slot = remain_slot(secs);

	v = bpf_map_lookup_elem(&census_remain, &k);
	if (!v) {
		/* too big for the stack: an all-zero value in .bss */
		bpf_map_update_elem(&census_remain, &k, &remain_zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&census_remain, &k);
		if (!v) {
			add_overflow(netns, 3); /* the table of (namespace, state) pairs is full */
			return;
		}
	}
	if (slot < CTOP_REMAIN_SLOTS)
		__sync_fetch_and_add(&v->slot[slot], 1);
}

/* Count one entry, given its node; only original-direction nodes count, so
 * that every entry counts once. */
static void census_node(struct ctop_walk_stats *st, __u64 node)
{
	struct nf_conntrack_tuple_hash *h = (void *)node;
	struct nf_conntrack_tuple t;
	struct nf_conn *ct;
	struct ctop_census_key k = { .state = 0xff };
	struct ctop_census_val *v, init = { .entries = 1 };
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
	k.netns = st->last_inum;
	k.family = (__u8)t.src.l3num;
	k.proto = t.dst.protonum;
	switch (k.proto) {
	case IPPROTO_TCP:
		k.state = BPF_CORE_READ(ct, proto.tcp.state);
		/* fall through */
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
	case IPPROTO_SCTP:
	case IPPROTO_DCCP:
		k.port = bpf_ntohs(t.dst.u.all);
		break;
	}
	st->census_entries++;
	if (status & IPS_ASSURED)
		init.assured = 1;
	if (!(status & IPS_SEEN_REPLY))
		init.unreplied = 1;
	/* this CPU's value: plain adds; a key another CPU inserted first (-EEXIST)
	 * is looked up again */
	v = bpf_map_lookup_elem(&census_groups, &k);
	if (!v) {
		long err = bpf_map_update_elem(&census_groups, &k, &init, BPF_NOEXIST);

		if (err == -EEXIST)
			v = bpf_map_lookup_elem(&census_groups, &k);
		else if (err)
			add_overflow(k.netns, 2);
	}
	if (v) {
		v->entries++;
		v->assured += init.assured;
		v->unreplied += init.unreplied;
	}
	if (k.proto == IPPROTO_TCP && CONFIG_HZ > 0)
		add_remaining(k.netns, k.state, ct);
	if (census_addrs_enabled) {
		add_addr(st, k.netns, k.family, 0, &t.src.u3);
		add_addr(st, k.netns, k.family, 1, &t.dst.u3);
	}
}

static long census_cb(__u32 i, void *ctx)
{
	/* bpf_loop's context must live on the stack: look the scratch up again
	 * (a per-CPU array lookup is an address computation) */
	__u32 zero = 0;
	struct chain_scratch *sc = bpf_map_lookup_elem(&scratch, &zero);
	struct ctop_walk_stats *st = stats();

	if (!sc || !st || i >= CTOP_WALK_MAX_CHAIN)
		return 1;
	/* clang checks one copy of i and indexes with another, which the
	 * verifier cannot follow: an opaque copy, masked (CTOP_WALK_MAX_CHAIN is
	 * a power of two) right where it is used */
	asm volatile("" : "+r"(i));
	census_node(st, sc->node[i & (CTOP_WALK_MAX_CHAIN - 1)]);
	return 0;
}

static long walk_bucket(__u32 i, void *ctx)
{
	struct ctop_walk_stats *st = stats();
	__u32 b, idx;
	int len;

	if (!st)
		return 1;
	b = st->run_start + i;
	if (b >= walk_size)
		return 1;
	__u32 zero = 0;
	struct chain_scratch *sc = census_enabled ? bpf_map_lookup_elem(&scratch, &zero) : NULL;

	st->done++;
	len = chain_len(b, sc);
	if (len < 0) {
		st->rewalked++;
		len = chain_len(b, sc);
		if (len < 0) {
			st->inconsistent++;
			return 0;
		}
	}
	idx = (__u32)len;
	if (idx >= CTOP_WALK_HIST)
		idx = CTOP_WALK_HIST - 1;
	st->hist[idx]++;
	st->nodes += (__u32)len;
	if ((__u32)len > st->longest)
		st->longest = (__u32)len;
	if (sc && len > 0)
		bpf_loop((__u32)len, census_cb, NULL, 0);
	return 0;
}

/* sizeof(struct nf_conn) in the running kernel (a CO-RE relocation against its
 * BTF): the census's entry size, without parsing the BTF a second time */
__u32 nf_conn_bytes;

/* One run: buckets [ctx[0], ctx[0] + ctx[1]) (BPF_PROG_TEST_RUN's ctx_in,
 * so that runs on several CPUs at once each get their own range). */
SEC("raw_tp")
int ctop_walk_chain(__u64 *ctx)
{
	struct ctop_walk_stats *st = stats();

	if (!st)
		return 0;
	nf_conn_bytes = bpf_core_type_size(struct nf_conn);
	census_remain_ok = CONFIG_HZ > 0;
	st->run_start = (__u32)ctx[0];
	bpf_loop((__u32)ctx[1], walk_bucket, NULL, 0);
	return 0;
}
