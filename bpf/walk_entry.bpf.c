// SPDX-License-Identifier: GPL-2.0
/*
 * ctop census: one conntrack entry of ctop's own, made without traffic, from
 * which the walk finds the hash (walk.bpf.c ctop_walk_find) where kallsyms
 * hides nf_conntrack_hash.
 *
 * Run with BPF_PROG_TEST_RUN by a thread that has just entered a network
 * namespace of its own (unshare): a test run's skb belongs to the loopback
 * device of the caller's namespace, so bpf_skb_ct_alloc makes the entry in that
 * namespace, and bpf_ct_insert_entry puts it into the hash every namespace
 * shares, with no conntrack hook, rule or packet needed. The entry's node
 * address is kept; the thread deletes the entry over ctnetlink and leaves, and
 * its namespace goes with it. The kfuncs came in Linux 6.0
 * (net/netfilter/nf_conntrack_bpf.c): they live in this object of their own
 * so that a kernel without them still loads the walk.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

extern struct nf_conn___init *bpf_skb_ct_alloc(struct __sk_buff *skb_ctx, struct bpf_sock_tuple *bpf_tuple,
					       __u32 tuple__sz, struct bpf_ct_opts *opts, __u32 opts__sz) __ksym;
extern struct nf_conn *bpf_ct_insert_entry(struct nf_conn___init *nfct_i) __ksym;
extern void bpf_ct_release(struct nf_conn *ct) __ksym;

/* the size of struct bpf_ct_opts in Linux 6.0 (up to `reserved`); later
 * kernels accept it too */
#define CT_OPTS_V1_BYTES 12
#define BPF_F_CURRENT_NETNS (-1)

__u16 entry_sport;  /* in: the entry's source port, network order (127.0.0.1 -> 127.0.0.1:9, UDP) */
__u64 entry_node;   /* out: its original-direction node */
__s32 entry_err;    /* out: bpf_ct_opts.error of a refused allocation, or -EEXIST */

SEC("tc")
int ctop_walk_own_entry(struct __sk_buff *skb)
{
	struct bpf_sock_tuple t = {};
	struct bpf_ct_opts o = { .netns_id = BPF_F_CURRENT_NETNS, .l4proto = IPPROTO_UDP };
	struct nf_conn___init *ni;
	struct nf_conn *ct;

	entry_node = 0;
	entry_err = 0;
	t.ipv4.saddr = bpf_htonl(0x7f000001);
	t.ipv4.daddr = bpf_htonl(0x7f000001);
	t.ipv4.sport = entry_sport;
	t.ipv4.dport = bpf_htons(9);
	ni = bpf_skb_ct_alloc(skb, &t, sizeof(t.ipv4), &o, CT_OPTS_V1_BYTES);
	if (!ni) {
		entry_err = o.error ? o.error : -1;
		return 0;
	}
	/* consumes ni; NULL when the insert was refused (an equal entry exists) */
	ct = bpf_ct_insert_entry(ni);
	if (!ct) {
		entry_err = -17; /* EEXIST */
		return 0;
	}
	entry_node = (__u64)ct + bpf_core_field_offset(struct nf_conn, tuplehash);
	bpf_ct_release(ct);
	return 0;
}
