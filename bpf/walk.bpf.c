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
 *   walk_capture  tp_btf/net_dev_queue: remembers one confirmed entry's
 *                 original-direction node (any entry of any namespace: the
 *                 hash is global), attached only for a moment.
 *   walk_locate   raw_tp, run with BPF_PROG_TEST_RUN: from that node, the
 *                 bucket index (its chain's marker) and the bucket head (back
 *                 along pprev), hence the table's address; or, where
 *                 /proc/kallsyms lists nf_conntrack_hash, reads the pointer.
 *   walk_chains   raw_tp, run with BPF_PROG_TEST_RUN over a bounded range of
 *                 buckets per run (bpf_loop), resumed by user space, so that
 *                 one run never holds a CPU for long.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "walk.h"

char LICENSE[] SEC("license") = "GPL";

#define CTINFO_MASK 7UL

/* ---- capture ------------------------------------------------------------ */
__u64 captured_node;

SEC("tp_btf/net_dev_queue")
int BPF_PROG(walk_capture, struct sk_buff *skb)
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

SEC("raw_tp")
int walk_locate(void *ctx)
{
	__u64 node = locate_in, p, q = 0, r;
	int i;

	located_base = 0;
	locate_err = CTOP_LOCATE_OK;
	if (locate_mode == 1) {
		if (read_ptr(&located_base, node))
			locate_err = CTOP_LOCATE_READ;
		return 0;
	}
	/* forward to the marker: it names the bucket */
	p = node;
	for (i = 0; i < CTOP_WALK_MAX_CHAIN; i++) {
		if (read_ptr(&q, p)) {
			locate_err = CTOP_LOCATE_READ;
			return 0;
		}
		if (q & 1)
			break;
		p = q;
	}
	if (!(q & 1)) {
		locate_err = CTOP_LOCATE_NO_MARKER;
		return 0;
	}
	located_bucket = (__u32)(q >> 1);
	/* backward to the head: p is a node exactly when *(p->pprev) == p */
	if (read_ptr(&p, node + offsetof(struct hlist_nulls_node, pprev))) {
		locate_err = CTOP_LOCATE_READ;
		return 0;
	}
	for (i = 0; i < CTOP_WALK_MAX_CHAIN; i++) {
		/* a head's "pprev" would be the next bucket's `first` (or past the
		 * table's end: unreadable), never a pointer back to p */
		if (read_ptr(&q, p + offsetof(struct hlist_nulls_node, pprev)) || (q & 1) || !q)
			break;
		if (read_ptr(&r, q) || r != p)
			break;
		p = q;
	}
	if (i == CTOP_WALK_MAX_CHAIN) {
		locate_err = CTOP_LOCATE_NO_HEAD;
		return 0;
	}
	located_base = p - (__u64)located_bucket * sizeof(struct hlist_nulls_head);
	return 0;
}

/* ---- walk ----------------------------------------------------------------- */
__u64 walk_base;
__u32 walk_size;   /* nf_conntrack_htable_size */
__u32 walk_start;  /* first bucket of this run */
__u32 walk_count;  /* buckets in this run */
__u64 walk_hist[CTOP_WALK_HIST];
__u64 walk_nodes;
__u32 walk_longest;
__u32 walk_rewalked;
__u32 walk_inconsistent;
__u32 walk_done;   /* buckets walked, consistent or not */

/* Chain length of bucket b, or -1 when the chain does not end in b's marker. */
static int chain_len(__u32 b)
{
	__u64 p;
	int i;

	if (read_ptr(&p, walk_base + (__u64)b * sizeof(struct hlist_nulls_head)))
		return -1;
	for (i = 0; i < CTOP_WALK_MAX_CHAIN; i++) {
		if (p & 1)
			return (p >> 1) == b ? i : -1;
		if (read_ptr(&p, p))
			return -1;
	}
	return -1;
}

static long walk_bucket(__u32 i, void *ctx)
{
	__u32 b = walk_start + i, idx;
	int len;

	if (b >= walk_size)
		return 1;
	walk_done++;
	len = chain_len(b);
	if (len < 0) {
		walk_rewalked++;
		len = chain_len(b);
		if (len < 0) {
			walk_inconsistent++;
			return 0;
		}
	}
	idx = (__u32)len;
	if (idx >= CTOP_WALK_HIST)
		idx = CTOP_WALK_HIST - 1;
	walk_hist[idx]++;
	walk_nodes += (__u32)len;
	if ((__u32)len > walk_longest)
		walk_longest = (__u32)len;
	return 0;
}

SEC("raw_tp")
int walk_chains(void *ctx)
{
	bpf_loop(walk_count, walk_bucket, NULL, 0);
	return 0;
}
