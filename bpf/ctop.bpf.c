// SPDX-License-Identifier: GPL-2.0
/*
 * ctop's kernel programs: count conntrack inserts and drops per port and per
 * 5-tuple, aggregated in maps; nothing is sent to user space per event.
 *
 * Tier "netfilter" (kernels >= 6.4, where BPF netfilter links exist):
 *   ctop_nf_confirm   BPF_PROG_TYPE_NETFILTER on POST_ROUTING and LOCAL_IN at
 *                     priority INT_MAX-2, i.e. right before the confirm step
 *                     (INT_MAX, or INT_MAX-1 for IPv6 LOCAL_IN), after every
 *                     filter/NAT hook had its say. Every
 *                     packet that creates an entry leaves the host stack through
 *                     one of those two hooks with the entry still unconfirmed.
 *   ctop_kfree_skb    tp_btf/kfree_skb (kernels >= 5.17 carry the drop reason):
 *                     packets freed with SKB_DROP_REASON_NETFILTER_DROP and no
 *                     conntrack attached, matched against the kernel's per-CPU
 *                     `drop` statistic so that only conntrack's own drops count.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "ctop.h"

char LICENSE[] SEC("license") = "GPL";

#define NF_ACCEPT 1
/* include/uapi/linux/netfilter/nf_conntrack_common.h: skb->_nfct keeps
 * enum ip_conntrack_info in its low 3 bits, the struct nf_conn * above. */
#define CTINFO_MASK 7UL
#define CT_RELATED 1 /* IP_CT_RELATED: expected connections (helpers) are new entries too */
#define CT_NEW 2     /* IP_CT_NEW */
#define IPS_CONFIRMED (1UL << 3)
#define E2BIG 7
#define EEXIST 17
#define CTOP_AF_INET 2
#define CTOP_AF_INET6 10
#define CTOP_IPPROTO_ICMPV6 58 /* not an enum member in vmlinux.h */

/* kfunc (kernels >= 6.2): a read-only, untrusted BTF view of a kernel pointer */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

/* Set by the loader before load. 0 = every namespace. */
const volatile __u32 target_netns = 0;
/* BTF id of struct nf_conn in the running kernel, looked up by exact name by
 * the loader: a CO-RE type-id relocation is ambiguous because vmlinux also
 * carries the flavor `nf_conn___init`. Frozen read-only data is a known
 * constant to the verifier, as bpf_rdonly_cast() requires. */
const volatile __u32 nf_conn_btf_id = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 8192); /* resized by the loader (--max-ports) */
	__type(key, struct ctop_port_key);
	__type(value, struct ctop_counts);
} port_counts SEC(".maps");

/* Per-5-tuple counts, shared (not per-CPU): a tuple rarely repeats, so
 * per-CPU copies would multiply memory by the CPU count for nothing. Inserts
 * and drops have a map each, so that a flood of new flows cannot crowd out
 * the victims of a table-full episode. Values: struct ctop_tuple_val. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384); /* resized by the loader (--max-tuples) */
	__type(key, struct ctop_tuple_key);
	__type(value, struct ctop_tuple_val);
} tuple_inserts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096); /* resized by the loader (--max-drop-tuples) */
	__type(key, struct ctop_tuple_key);
	__type(value, struct ctop_tuple_val);
} tuple_drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CTOP_FULL_COUNT);
	__type(key, __u32);
	__type(value, __u32);
} full SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CTOP_TOTAL_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} totals SEC(".maps");

/* Per namespace and CPU: how many of the kernel's `drop` statistic
 * increments have been matched to a kfree_skb event. Seeded by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
} drop_seen SEC(".maps");

/* One per-CPU slot whose address tells this CPU's per-cpu offset (see this_cpu_addr). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} cpu_anchor SEC(".maps");

static __always_inline void total_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&totals, &idx);

	/* Atomic even in a per-CPU slot: a BPF program runs with migration
	 * disabled but is still preemptible, and a softirq can interrupt a
	 * process-context hook on the same CPU; a plain += could then lose a
	 * count. An uncontended locked add costs a few cycles. */
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline bool map_full(__u32 which)
{
	__u32 *f = bpf_map_lookup_elem(&full, &which);

	return f && *f;
}

static __always_inline void mark_full(__u32 which)
{
	__u32 *f = bpf_map_lookup_elem(&full, &which);

	if (f)
		*f = 1;
}

static __always_inline void count_port(const struct ctop_port_key *k, bool drop)
{
	struct ctop_counts *c = bpf_map_lookup_elem(&port_counts, k);

	if (!c) {
		struct ctop_counts zero = {};

		if (map_full(CTOP_FULL_PORTS)) {
			total_inc(CTOP_TOTAL_PORT_OVERFLOW);
			return;
		}
		/* EEXIST (another CPU won the race) is fine; E2BIG means full */
		if (bpf_map_update_elem(&port_counts, k, &zero, BPF_NOEXIST) == -E2BIG)
			mark_full(CTOP_FULL_PORTS);
		c = bpf_map_lookup_elem(&port_counts, k);
		if (!c) {
			total_inc(CTOP_TOTAL_PORT_OVERFLOW);
			return;
		}
	}
	/* atomic for the same reason as total_inc() */
	if (drop)
		__sync_fetch_and_add(&c->drops, 1);
	else
		__sync_fetch_and_add(&c->inserts, 1);
}

/* One tuple map: `map` is tuple_inserts or tuple_drops (a constant once inlined). */
static __always_inline void count_tuple(void *map, const struct ctop_tuple_key *k, __u32 full_idx, __u32 overflow_idx,
					__u32 entries_idx)
{
	struct ctop_tuple_val *v, one = { .count = 1 };

	/* Once full, a new flow cannot get in and an old one almost never
	 * recurs: count the event as overflow and skip the hash work. */
	if (map_full(full_idx)) {
		total_inc(overflow_idx);
		return;
	}
	v = bpf_map_lookup_elem(map, k);
	if (v) {
		__sync_fetch_and_add(&v->count, 1);
		return;
	}
	switch (bpf_map_update_elem(map, k, &one, BPF_NOEXIST)) {
	case 0:
		total_inc(entries_idx);
		return;
	case -EEXIST: /* another CPU inserted it first */
		v = bpf_map_lookup_elem(map, k);
		if (v) {
			__sync_fetch_and_add(&v->count, 1);
			return;
		}
		break;
	case -E2BIG:
		mark_full(full_idx);
		break;
	}
	total_inc(overflow_idx);
}

static __always_inline void count_event(struct ctop_tuple_key *t, bool drop)
{
	struct ctop_port_key pk = {
		.netns = t->netns,
		.family = t->family,
		.proto = t->proto,
		.port = t->dport,
	};

	count_port(&pk, drop);
	if (drop)
		count_tuple(&tuple_drops, t, CTOP_FULL_TUPLE_DROPS, CTOP_TOTAL_DROP_TUPLE_OVERFLOW,
			    CTOP_TOTAL_DROP_TUPLE_ENTRIES);
	else
		count_tuple(&tuple_inserts, t, CTOP_FULL_TUPLE_INSERTS, CTOP_TOTAL_TUPLE_OVERFLOW,
			    CTOP_TOTAL_TUPLE_ENTRIES);
}

/* ---------------------------------------------------------------------------
 * Inserts: netfilter hook right before the confirm step.
 */
SEC("netfilter")
int ctop_nf_confirm(struct bpf_nf_ctx *ctx)
{
	/* ctx->skb is a trusted BTF pointer here: _nfct loads directly. */
	unsigned long nfct = ctx->skb->_nfct;
	unsigned long ctinfo = nfct & CTINFO_MASK;
	struct nf_conn *ct;
	unsigned long status;

	/* Hot path: established, reply and untracked packets leave here. */
	if (ctinfo != CT_NEW && ctinfo != CT_RELATED)
		return NF_ACCEPT;
	/* The pointer in _nfct is a plain number to the verifier; cast it to a
	 * read-only BTF pointer (kfunc, kernels >= 6.2) so that the reads below
	 * are inline PROBE_MEM loads rather than helper calls. */
	ct = bpf_rdonly_cast((void *)(nfct & ~CTINFO_MASK), nf_conn_btf_id);
	if (!ct)
		return NF_ACCEPT;
	/* Packets of an unreplied flow stay IP_CT_NEW after the first one was
	 * confirmed; on loopback the same skb passes POST_ROUTING (confirmed
	 * there) and then LOCAL_IN. Only an unconfirmed entry is an insert. */
	status = ct->status;
	if (status & IPS_CONFIRMED)
		return NF_ACCEPT;

	struct ctop_tuple_key t = {};
	struct nf_conntrack_tuple *tup = &ct->tuplehash[0].tuple;
	__u32 netns = ctx->state->net->ns.inum;

	if (target_netns && netns != target_netns)
		return NF_ACCEPT;

	total_inc(CTOP_TOTAL_INSERTS);
	t.netns = netns;
	t.family = tup->src.l3num;
	t.proto = tup->dst.protonum;
	if (t.proto == IPPROTO_ICMP || t.proto == CTOP_IPPROTO_ICMPV6) {
		t.sport = bpf_ntohs(tup->src.u.icmp.id);
		t.dport = tup->dst.u.icmp.type;
	} else {
		t.sport = bpf_ntohs(tup->src.u.all);
		t.dport = bpf_ntohs(tup->dst.u.all);
	}
	/* u3 is 16 bytes for both families; IPv4 uses the first 4, the rest is 0 */
	__builtin_memcpy(t.saddr, &tup->src.u3, 16);
	__builtin_memcpy(t.daddr, &tup->dst.u3, 16);
	count_event(&t, false);
	return NF_ACCEPT;
}

/* ---------------------------------------------------------------------------
 * Drops: tp_btf/kfree_skb.
 */

/*
 * The kernel's this_cpu_ptr() for a __percpu address. Kernels built without
 * percpu BTF type tags or KALLSYMS_ALL (this machine's) give BPF no helper for
 * it, so derive this CPU's per-cpu offset from a per-CPU array of our own:
 * bpf_map_lookup_elem returns this_cpu_ptr(array->pptrs[0]).
 * Runs only on conntrack-drop events, never per packet.
 */
static __always_inline __u64 this_cpu_addr(__u64 percpu_addr)
{
	__u32 zero = 0;
	void *mine = bpf_map_lookup_elem(&cpu_anchor, &zero);
	void *map = &cpu_anchor;
	__u64 mine_addr = 0, map_addr = 0, base = 0;

	if (!mine)
		return 0;
	/* Pointers become plain numbers by copying them through the stack. */
	bpf_probe_read_kernel(&mine_addr, sizeof(mine_addr), &mine);
	bpf_probe_read_kernel(&map_addr, sizeof(map_addr), &map);
	if (bpf_probe_read_kernel(&base, sizeof(base),
				  (void *)(map_addr + bpf_core_field_offset(struct bpf_array, pptrs))))
		return 0;
	return percpu_addr + (mine_addr - base);
}

static __always_inline struct net *skb_net(struct sk_buff *skb)
{
	struct net_device *dev = BPF_CORE_READ(skb, dev);
	struct sock *sk;

	if (dev)
		return BPF_CORE_READ(dev, nd_net.net);
	/* LOCAL_OUT before routing set skb->dev: the socket's namespace */
	sk = BPF_CORE_READ(skb, sk);
	if (sk)
		return BPF_CORE_READ(sk, __sk_common.skc_net.net);
	return 0;
}

/*
 * Was this untracked netfilter drop conntrack's own? nf_conntrack_in()
 * increments the namespace's per-CPU `drop` statistic and returns NF_DROP;
 * nf_hook_slow() then frees the skb on the same CPU. Each statistic increment
 * not yet matched pays for one event; raw-table or `ct state invalid` drops
 * find none and are left out.
 */
static __always_inline bool consume_conntrack_drop(struct net *net, __u32 netns)
{
	__u64 pcpu_stat = (__u64)BPF_CORE_READ(net, ct.stat);
	__u64 stat;
	__u32 kernel_drops = 0, *seen;

	if (!pcpu_stat)
		return false;
	stat = this_cpu_addr(pcpu_stat);
	if (!stat || bpf_probe_read_kernel(&kernel_drops, sizeof(kernel_drops),
					   (void *)(stat + bpf_core_field_offset(struct ip_conntrack_stat, drop))))
		return false;
	seen = bpf_map_lookup_elem(&drop_seen, &netns);
	if (!seen) {
		/* The loader seeds every namespace it attached to before this
		 * program runs; one it did not see was created later, and a new
		 * namespace's statistics start at 0. */
		__u32 zero = 0;

		bpf_map_update_elem(&drop_seen, &netns, &zero, BPF_NOEXIST);
		seen = bpf_map_lookup_elem(&drop_seen, &netns);
		if (!seen) {
			total_inc(CTOP_TOTAL_NETNS_OVERFLOW);
			return false;
		}
	}
	if ((__s32)(kernel_drops - *seen) <= 0)
		return false;
	*seen += 1;
	return true;
}

/* Reads the dropped packet's addresses and ports. Returns false when the
 * headers cannot be read (the drop still counts in the totals). */
static __always_inline bool parse_skb_tuple(struct sk_buff *skb, struct ctop_tuple_key *t)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	unsigned char *l3 = head + nh;
	__u8 first = 0, proto;
	__u32 l4off;

	if (!head || bpf_probe_read_kernel(&first, 1, l3))
		return false;
	if ((first >> 4) == 4) {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), l3))
			return false;
		t->family = CTOP_AF_INET;
		proto = ip.protocol;
		__builtin_memcpy(t->saddr, &ip.saddr, 4);
		__builtin_memcpy(t->daddr, &ip.daddr, 4);
		l4off = (ip.ihl & 0xf) * 4;
		/* a non-first fragment carries no L4 header (conntrack sees the
		 * reassembled packet, so this is rare) */
		if (bpf_ntohs(ip.frag_off) & 0x1fff)
			goto noports;
	} else if ((first >> 4) == 6) {
		struct ipv6hdr ip6;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), l3))
			return false;
		t->family = CTOP_AF_INET6;
		__builtin_memcpy(t->saddr, &ip6.saddr, 16);
		__builtin_memcpy(t->daddr, &ip6.daddr, 16);
		proto = ip6.nexthdr;
		l4off = sizeof(ip6);
		/* Walk a bounded number of extension headers. */
#pragma unroll
		for (int i = 0; i < 6; i++) {
			__u8 eh[2];

			if (proto != 0 && proto != 43 && proto != 60 && proto != 44 && proto != 51)
				break;
			if (bpf_probe_read_kernel(eh, sizeof(eh), l3 + l4off))
				return false;
			if (proto == 44) { /* fragment header: 8 bytes */
				__be16 off = 0;

				bpf_probe_read_kernel(&off, sizeof(off), l3 + l4off + 2);
				proto = eh[0];
				l4off += 8;
				if (bpf_ntohs(off) & 0xfff8)
					goto noports_v6;
				continue;
			}
			l4off += proto == 51 ? ((__u32)eh[1] + 2) * 4 : ((__u32)eh[1] + 1) * 8;
			proto = eh[0];
		}
	} else {
		return false;
	}
	t->proto = proto;
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE ||
	    proto == IPPROTO_SCTP || proto == IPPROTO_DCCP) {
		__be16 ports[2];

		if (bpf_probe_read_kernel(ports, sizeof(ports), l3 + l4off))
			return false;
		t->sport = bpf_ntohs(ports[0]);
		t->dport = bpf_ntohs(ports[1]);
	} else if (proto == IPPROTO_ICMP || proto == CTOP_IPPROTO_ICMPV6) {
		__u8 hdr[6];

		if (bpf_probe_read_kernel(hdr, sizeof(hdr), l3 + l4off))
			return false;
		t->dport = hdr[0];                              /* type */
		t->sport = ((__u16)hdr[4] << 8) | hdr[5];       /* echo id */
	}
	return true;
noports_v6:
	t->proto = proto;
	return true;
noports:
	t->proto = proto;
	return true;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(ctop_kfree_skb, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	/* Every freed-on-error skb in the system passes here: leave early. */
	if (reason != bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NETFILTER_DROP))
		return 0;
	/* Table-full drops happen before an entry is attached. */
	if (BPF_CORE_READ(skb, _nfct))
		return 0;

	struct net *net = skb_net(skb);
	__u32 netns;

	if (!net)
		return 0;
	netns = BPF_CORE_READ(net, ns.inum);
	if (target_netns && netns != target_netns)
		return 0;
	if (!consume_conntrack_drop(net, netns)) {
		total_inc(CTOP_TOTAL_OTHER_NF_DROPS);
		return 0;
	}
	total_inc(CTOP_TOTAL_DROPS);

	struct ctop_tuple_key t = {};

	t.netns = netns;
	if (!parse_skb_tuple(skb, &t)) {
		total_inc(CTOP_TOTAL_DROP_UNPARSED);
		return 0;
	}
	count_event(&t, true);
	return 0;
}

/* ---------------------------------------------------------------------------
 * Reading: which tuples moved since the last read.
 *
 * Never attached: user space runs it with BPF_PROG_TEST_RUN (a netfilter
 * program, because that program type and test runs of it are what this
 * kernel class allows; iter/bpf_map_elem is refused here). It walks one
 * tuple map in the kernel (bpf_for_each_map_elem, 5.13+) and writes only the
 * moved tuples, with their growth, into moved_out, which user space reads
 * through mmap: an untouched tuple costs a compare, not a copy to user space
 * and a lookup there.
 *
 * `reported` advances only when the record was written; a hot-path increment
 * between our read of `count` and the store stays in count - reported and is
 * handed over next time: nothing is lost or doubled. A full moved_out stops
 * the walk; what it did not reach stays unreported until the next run.
 * -------------------------------------------------------------------------*/
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 16384); /* resized by the loader: the bigger tuple map */
	__type(key, __u32);
	__type(value, struct ctop_tuple_moved);
} moved_out SEC(".maps");

/* Set by user space before a run (0: tuple_inserts, 1: tuple_drops), and the
 * run's results; .bss is memory-mapped by the skeleton. */
volatile __u32 collect_which;
volatile __u32 collect_n;
volatile __u32 collect_full;

struct moved_ctx {
	__u32 n;
	__u32 full;
};

static long moved_cb(struct bpf_map *map, struct ctop_tuple_key *k, struct ctop_tuple_val *v, struct moved_ctx *c)
{
	__u64 now = *(volatile __u64 *)&v->count;
	struct ctop_tuple_moved *out;
	__u32 i = c->n;

	if (now == v->reported)
		return 0;
	out = bpf_map_lookup_elem(&moved_out, &i);
	if (!out) {
		c->full = 1;
		return 1; /* stop the walk */
	}
	__builtin_memcpy(&out->key, k, sizeof(out->key));
	out->pad = 0;
	out->grew = now - v->reported;
	v->reported = now;
	c->n = i + 1;
	return 0;
}

SEC("netfilter")
int ctop_collect_moved(struct bpf_nf_ctx *ctx)
{
	struct moved_ctx c = {};

	if (collect_which)
		bpf_for_each_map_elem(&tuple_drops, moved_cb, &c, 0);
	else
		bpf_for_each_map_elem(&tuple_inserts, moved_cb, &c, 0);
	collect_n = c.n;
	collect_full = c.full;
	return NF_ACCEPT;
}
