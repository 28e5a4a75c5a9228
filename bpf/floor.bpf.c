// SPDX-License-Identifier: GPL-2.0
/*
 * The floor: empty programs at exactly the places ctop's programs attach,
 * for benchmarks only (ctop-selftest hold --floor). What a tier costs the
 * traffic is ctop's programs minus this: the kernel's dispatch and, with
 * kernel.bpf_stats_enabled, its own clock reads are paid by any program there.
 * Which of them a tier attaches is the loader's own rule,
 * ctop_tier_runs_program() (native/core/probe.c), by the same names: the
 * function tiers take floor_kfree_skb where the kernel has the drop reason
 * and the *_alloc_* programs where it has not, as ctop's programs do.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define NF_ACCEPT 1

/* tier netfilter: linked like ctop_nf_confirm (native/core/netns.c) */
SEC("netfilter")
int floor_nf(struct bpf_nf_ctx *ctx)
{
	return NF_ACCEPT;
}

/* the netfilter tier's drops, and the function tiers' with the drop reason */
SEC("tp_btf/kfree_skb")
int BPF_PROG(floor_kfree_skb)
{
	return 0;
}

/* tier fentry */
SEC("fexit/__nf_conntrack_confirm")
int BPF_PROG(floor_fe_confirm_exit) { return 0; }
/* without the drop reason only */
SEC("fexit/__nf_conntrack_alloc")
int BPF_PROG(floor_fe_alloc_exit) { return 0; }
SEC("fentry/early_drop")
int BPF_PROG(floor_fe_early_drop_enter) { return 0; }
SEC("fexit/early_drop")
int BPF_PROG(floor_fe_early_drop_exit) { return 0; }
SEC("fentry/__nf_ct_delete_from_lists")
int BPF_PROG(floor_fe_unlink) { return 0; }
SEC("fentry/__nf_ct_resolve_clash")
int BPF_PROG(floor_fe_clash_enter) { return 0; }

/* tier kprobe */
SEC("kprobe/__nf_conntrack_confirm")
int BPF_KPROBE(floor_kp_confirm_enter) { return 0; }
SEC("kretprobe/__nf_conntrack_confirm")
int BPF_KRETPROBE(floor_kp_confirm_exit) { return 0; }
/* without the drop reason only */
SEC("kprobe/__nf_conntrack_alloc")
int BPF_KPROBE(floor_kp_alloc_enter) { return 0; }
SEC("kretprobe/__nf_conntrack_alloc")
int BPF_KRETPROBE(floor_kp_alloc_exit) { return 0; }
SEC("kprobe/early_drop")
int BPF_KPROBE(floor_kp_early_drop_enter) { return 0; }
SEC("kretprobe/early_drop")
int BPF_KRETPROBE(floor_kp_early_drop_exit) { return 0; }
SEC("kprobe/__nf_ct_delete_from_lists")
int BPF_KPROBE(floor_kp_unlink) { return 0; }
