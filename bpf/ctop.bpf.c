// SPDX-License-Identifier: GPL-2.0
/*
 * ctop's kernel programs: count conntrack inserts and drops per port and per
 * 5-tuple, aggregated in maps; nothing is sent to user space per event.
 *
 * Three tiers live in this object; the loader turns on the programs of one
 * (bpf_program__set_autoload) and falls back to the next if the kernel
 * refuses them. See the "function tiers" section at the end for the first two.
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
 *                     The function tiers count their drops with it too where
 *                     the kernel has that reason (the loader checks its BTF:
 *                     ctop_tier_runs_program), so that none of their programs
 *                     runs per new flow just to catch refusals.
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

/* kfunc (kernels >= 6.2): a read-only, untrusted BTF view of a kernel pointer.
 * Weak: on older kernels only the netfilter tier, which is not loaded there,
 * uses it, and libbpf must not refuse the whole object for its absence. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

/* Set by the loader before load. 0 = every namespace. */
const volatile __u32 target_netns = 0;
/* BTF id of struct nf_conn in the running kernel, looked up by exact name by
 * the loader: a CO-RE type-id relocation is ambiguous because vmlinux also
 * carries the flavor `nf_conn___init`. Frozen read-only data is a known
 * constant to the verifier, as bpf_rdonly_cast() requires. */
const volatile __u32 nf_conn_btf_id = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, CTOP_DEFAULT_MAX_PORTS); /* resized by the loader (--max-ports) */
	__type(key, struct ctop_port_key);
	__type(value, struct ctop_counts);
} port_counts SEC(".maps");

/* The first CTOP_PORT_SLOTS ports each CPU sees (bar collisions): see ctop.h. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CTOP_PORT_SLOTS);
	__type(key, __u32);
	__type(value, struct ctop_port_slot);
} port_slots SEC(".maps");

/* New flows' tuples, a ring per CPU (ctop.h, struct ctop_tuple_slot):
 * sized by the loader to the CPUs times 1 << ring_bits (--max-tuples). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, CTOP_DEFAULT_MAX_TUPLES);
	__type(key, __u32);
	__type(value, struct ctop_tuple_slot);
} tuple_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1); /* resized by the loader: possible CPUs */
	__type(key, __u32);
	__type(value, struct ctop_ring_head);
} ring_heads SEC(".maps");

/* Set by the loader: each CPU's ring holds 1 << ring_bits tuples. */
const volatile __u32 ring_bits = 13;

/* Refused packets' tuples: a shared hash (a refusal is rare next to new
 * flows, and a flood of new flows must not crowd out the victims of a
 * table-full episode). Values: struct ctop_tuple_val. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CTOP_DEFAULT_MAX_DROP_TUPLES); /* resized by the loader (--max-drop-tuples) */
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

/* One per-CPU slot whose address tells this CPU's per-cpu offset, which it
 * then keeps (see this_cpu_addr). */
struct cpu_anchor_slot {
	__u64 offset;
	__u64 known;
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_anchor_slot);
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

/* Does key own this CPU's direct-mapped slot (struct ctop_port_slot,
 * struct ctop_port_event_slot: slot_key is its first field)? A free one (0)
 * is claimed, with a compare-and-swap because a softirq on this CPU may
 * claim it between our read and our write. */
static __always_inline bool slot_owned(__u64 *slot_key, __u64 key)
{
	__u64 owner = *slot_key;

	if (!owner)
		owner = __sync_val_compare_and_swap(slot_key, 0, key) ?: key;
	return owner == key;
}

/* slot: the enum ctop_role of an insert, or CTOP_ROLE_COUNT for a drop
 * (struct ctop_counts is five u64: the roles, then drops). */
static __always_inline void count_port(const struct ctop_port_key *k, __u32 slot)
{
	__u64 *counter, key;
	__u32 idx;
	struct ctop_port_slot *ps;

	if (slot > CTOP_ROLE_COUNT)
		slot = CTOP_ROLE_COUNT;
	__builtin_memcpy(&key, k, sizeof(key));
	idx = ctop_port_slot_index(key);
	ps = bpf_map_lookup_elem(&port_slots, &idx);
	if (ps && slot_owned(&ps->key, key)) {
		/* atomic for the same reason as total_inc() */
		__sync_fetch_and_add((__u64 *)&ps->counts + slot, 1);
		return;
	}

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
	counter = (__u64 *)c + slot;
	/* atomic for the same reason as total_inc() */
	__sync_fetch_and_add(counter, 1);
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

/* The slot's seq, stored after its key and seen after it by the reader.
 * x86 is TSO: a store is never made visible before an earlier store, and the
 * JIT emits BPF stores as plain moves, so a plain store after a compiler
 * barrier orders the key before the seq. A locked exchange would order it
 * too, but it waits for every earlier store to leave the store buffer, and
 * the key's stores usually miss the cache (the ring is larger than it): the
 * exchange measured 60-100 ns per new flow, the plain store about 10 ns
 * (BENCHMARKS.md). Elsewhere, without a store-release instruction in
 * clang 14's BPF target, the exchange (a full barrier) stays. */
static __always_inline void publish_seq(__u64 *seq, __u64 val)
{
#if defined(__TARGET_ARCH_x86)
	asm volatile("" ::: "memory");
	*(volatile __u64 *)seq = val;
#else
	__sync_lock_test_and_set(seq, val);
#endif
}

/* Claims the next position of this CPU's ring for a new flow: the slot to
 * write (NULL: cannot happen, the ring array has a region per possible CPU)
 * and, in *pos, the position, which the slot's seq publishes once the key is
 * in (publish_seq). Every insert claims exactly one position, on every tier:
 * the heads' sum is the inserts total (the reader's CTOP_TOTAL_INSERTS), so
 * no separate count is kept. Programs run with migration disabled, so the CPU
 * holds for the run; a softirq running this on the same CPU in between claims
 * the next position, not ours (hence the atomic add). */
static __always_inline struct ctop_tuple_slot *ring_claim(__u64 *pos)
{
	__u32 cpu = bpf_get_smp_processor_id(), idx;
	struct ctop_ring_head *h = bpf_map_lookup_elem(&ring_heads, &cpu);

	if (!h)
		return NULL;
	*pos = __sync_fetch_and_add(&h->next, 1);
	idx = (cpu << ring_bits) | (__u32)(*pos & ((1ULL << ring_bits) - 1));
	return bpf_map_lookup_elem(&tuple_ring, &idx);
}

/* A new flow's tuple into this CPU's ring. */
static __always_inline void record_tuple(const struct ctop_tuple_key *k)
{
	__u64 pos;
	struct ctop_tuple_slot *slot = ring_claim(&pos);

	if (!slot)
		return;
	__builtin_memcpy(&slot->key, k, sizeof(slot->key));
	slot->pad = 0;
	publish_seq(&slot->seq, pos + 1);
}

static __always_inline void count_event(struct ctop_tuple_key *t, __u32 slot)
{
	bool drop = slot == CTOP_ROLE_COUNT;
	struct ctop_port_key pk = {
		.netns = t->netns,
		.family = t->family,
		.proto = t->proto,
		.port = t->dport,
	};

	count_port(&pk, slot);
	if (drop)
		count_tuple(&tuple_drops, t, CTOP_FULL_TUPLE_DROPS, CTOP_TOTAL_DROP_TUPLE_OVERFLOW,
			    CTOP_TOTAL_DROP_TUPLE_ENTRIES);
	else
		record_tuple(t);
}

/* ---------------------------------------------------------------------------
 * Inserts: netfilter hook right before the confirm step.
 */
#define CTOP_NF_INET_LOCAL_IN 1
#define CTOP_IFF_LOOPBACK 0x8 /* include/uapi/linux/if.h */

/* The role of an entry confirmed at this hook. Conntrack confirms on the last
 * hook a packet passes in this namespace: LOCAL_IN for packets delivered to a
 * local socket after arriving from elsewhere (server); POST_ROUTING for
 * packets leaving, where ip_output()/ip6_output() pass the receiving device
 * as `in` for forwarded packets (forward; bridged ones below) and none for locally sent ones,
 * whose output device tells loopback (local) from the rest (client). */
static __always_inline __u32 nf_role(const struct bpf_nf_ctx *ctx)
{
	const struct nf_hook_state *st = ctx->state;
	const struct net_device *out;

	if (st->hook == CTOP_NF_INET_LOCAL_IN)
		return CTOP_ROLE_SERVER;
	if (st->in)
		return CTOP_ROLE_FORWARD;
	/* Bridged with br_netfilter: br_nf_post_routing() passes no `in`, but
	 * the packet was received (skb_iif is set on receive, 0 on an skb this
	 * host built): forwarded across the bridge, never passing OUTPUT. */
	if (ctx->skb->skb_iif)
		return CTOP_ROLE_FORWARD;
	out = st->out;
	if (out && (out->flags & CTOP_IFF_LOOPBACK))
		return CTOP_ROLE_LOCAL;
	return CTOP_ROLE_CLIENT;
}

/* ctop_nf_confirm's 8-byte stores into a ring slot (struct ctop_tuple_slot,
 * ctop.h) on little-endian targets, word by word: netns, family, proto,
 * sport | dport, pad, saddr[0..3] | saddr[4..11] | saddr[12..15], daddr[0..3]
 * | daddr[4..11] | daddr[12..15], pad | seq. */
_Static_assert(__builtin_offsetof(struct ctop_tuple_slot, key.family) == 4 &&
		       __builtin_offsetof(struct ctop_tuple_slot, key.proto) == 5 &&
		       __builtin_offsetof(struct ctop_tuple_slot, key.sport) == 6 &&
		       __builtin_offsetof(struct ctop_tuple_slot, key.dport) == 8 &&
		       __builtin_offsetof(struct ctop_tuple_slot, key.saddr) == 12 &&
		       __builtin_offsetof(struct ctop_tuple_slot, key.daddr) == 28 &&
		       __builtin_offsetof(struct ctop_tuple_slot, pad) == 44 &&
		       __builtin_offsetof(struct ctop_tuple_slot, seq) == 48,
	       "ctop_tuple_slot layout (ctop_nf_confirm's word stores)");

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

	struct nf_conntrack_tuple *tup = &ct->tuplehash[0].tuple;
	__u32 netns = ctx->state->net->ns.inum;
	struct ctop_tuple_slot *slot;
	struct ctop_port_key pk;
	__u16 sport, dport;
	__u8 proto;
	__u64 pos;

	if (target_netns && netns != target_netns)
		return NF_ACCEPT;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	/* Every load through `ct` is a PROBE_MEM load, which the x86 JIT
	 * guards with about eight instructions (an address range check and a
	 * fault fixup): each address as two 8-byte loads (an untrusted BTF
	 * pointer may read across the u32 words of u3, not past the end of a
	 * member struct or union) makes 8 such loads for the tuple, not 12. */
	const __u64 *sa = (const __u64 *)&tup->src.u3, *da = (const __u64 *)&tup->dst.u3;
	__u64 s0 = sa[0], s1 = sa[1], d0 = da[0], d1 = da[1];
	__u16 dst_u = tup->dst.u.all;

	proto = tup->dst.protonum;
	sport = bpf_ntohs(tup->src.u.all); /* or src.u.icmp.id, the same bytes */
	if (proto == IPPROTO_ICMP || proto == CTOP_IPPROTO_ICMPV6)
		dport = (__u8)dst_u; /* dst.u.icmp.type, the first byte */
	else
		dport = bpf_ntohs(dst_u);
	pk.family = tup->src.l3num;
#else
	proto = tup->dst.protonum;
	if (proto == IPPROTO_ICMP || proto == CTOP_IPPROTO_ICMPV6) {
		sport = bpf_ntohs(tup->src.u.icmp.id);
		dport = tup->dst.u.icmp.type;
	} else {
		sport = bpf_ntohs(tup->src.u.all);
		dport = bpf_ntohs(tup->dst.u.all);
	}
	pk.family = tup->src.l3num;
#endif
	pk.netns = netns;
	pk.proto = proto;
	pk.port = dport;
	count_port(&pk, nf_role(ctx));
	/* The tuple goes from the entry straight into the ring slot (what
	 * record_tuple() does with a key built on the stack): no stack copy,
	 * and the slot's stores, which usually miss the cache, come after the
	 * last locked instruction, so nothing waits for them to drain. */
	slot = ring_claim(&pos);
	if (!slot)
		return NF_ACCEPT;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	/* The slot's first 48 bytes (struct ctop_tuple_slot: key, pad) as six
	 * 8-byte stores built from the words: fewer stores to drain into a
	 * line that usually misses. */
	{
		__u64 *o = (__u64 *)slot;

		o[0] = netns | (__u64)pk.family << 32 | (__u64)proto << 40 | (__u64)sport << 48;
		o[1] = dport | s0 << 32;		/* dport, pad 0, saddr[0..3] */
		o[2] = s0 >> 32 | s1 << 32;		/* saddr[4..11] */
		o[3] = s1 >> 32 | d0 << 32;		/* saddr[12..15], daddr[0..3] */
		o[4] = d0 >> 32 | d1 << 32;		/* daddr[4..11] */
		o[5] = d1 >> 32;			/* daddr[12..15], slot pad 0 */
	}
#else
	slot->key.netns = netns;
	slot->key.family = pk.family;
	slot->key.proto = proto;
	slot->key.sport = sport;
	slot->key.dport = dport;
	slot->key.pad = 0;
	{
		/* u3 is 16 bytes for both families (IPv4 in the first 4, the
		 * rest 0), copied as 4-byte words */
		__u32 *s = (__u32 *)slot->key.saddr, *d = (__u32 *)slot->key.daddr;

		s[0] = tup->src.u3.all[0];
		s[1] = tup->src.u3.all[1];
		s[2] = tup->src.u3.all[2];
		s[3] = tup->src.u3.all[3];
		d[0] = tup->dst.u3.all[0];
		d[1] = tup->dst.u3.all[1];
		d[2] = tup->dst.u3.all[2];
		d[3] = tup->dst.u3.all[3];
	}
	slot->pad = 0;
#endif
	publish_seq(&slot->seq, pos + 1);
	return NF_ACCEPT;
}

/* ---------------------------------------------------------------------------
 * Drops: tp_btf/kfree_skb.
 */

/*
 * The kernel's this_cpu_ptr() for a __percpu address. Kernels built without
 * percpu BTF type tags or KALLSYMS_ALL (this machine's) give BPF no helper for
 * it, so derive this CPU's per-cpu offset from a per-CPU array of our own:
 * bpf_map_lookup_elem returns this_cpu_ptr(array->pptrs[0]). A CPU's offset
 * never changes: each CPU works it out once and keeps it in its slot, so a
 * drop event after the first costs one lookup here, not three helper reads.
 * Runs only on netfilter-drop events, never per packet.
 */
static __always_inline __u64 this_cpu_addr(__u64 percpu_addr)
{
	__u32 zero = 0;
	struct cpu_anchor_slot *mine = bpf_map_lookup_elem(&cpu_anchor, &zero);
	void *map = &cpu_anchor;
	__u64 mine_addr = 0, map_addr = 0, base = 0;

	if (!mine)
		return 0;
	if (mine->known)
		return percpu_addr + mine->offset;
	/* Pointers become plain numbers by copying them through the stack. */
	bpf_probe_read_kernel(&mine_addr, sizeof(mine_addr), &mine);
	bpf_probe_read_kernel(&map_addr, sizeof(map_addr), &map);
	if (bpf_probe_read_kernel(&base, sizeof(base),
				  (void *)(map_addr + bpf_core_field_offset(struct bpf_array, pptrs))))
		return 0;
	mine->offset = mine_addr - base;
	mine->known = 1;
	return percpu_addr + mine->offset;
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
					goto noports;
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

	unsigned long nfct = BPF_CORE_READ(skb, _nfct);
	struct net *net = skb_net(skb);
	__u32 netns;

	if (!net)
		return 0;
	netns = BPF_CORE_READ(net, ns.inum);
	if (target_netns && netns != target_netns)
		return 0;
	/* Table-full drops happen before an entry is attached. A packet that
	 * carries one and still paid a `drop` increment lost an insertion race
	 * nf_ct_resolve_clash() could not resolve (it counts drop and
	 * insert_failed; the function tiers count that at the confirm): consume
	 * the increment, or the next untracked drop (a raw-table rule, `ct
	 * state invalid drop`) would be taken for a table-full one. */
	if (nfct) {
		consume_conntrack_drop(net, netns);
		return 0;
	}
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
	count_event(&t, CTOP_ROLE_COUNT);
	return 0;
}

/* ---------------------------------------------------------------------------
 * Function tiers: "fentry" (fentry/fexit) and "kprobe" (kprobe/kretprobe) on
 * the conntrack functions themselves. Nothing runs per packet: only when an
 * entry is created, confirmed, refused, evicted or deleted.
 *
 *   __nf_conntrack_confirm    insert (accepted, entry confirmed and still the
 *                             skb's), clash (accepted, but the skb now carries
 *                             the entry that won the race, or the kernel kept
 *                             the loser as IPS_NAT_CLASH), insert_failed (NF_DROP)
 *   __nf_ct_resolve_clash     fentry tier only: marks the skb whose entry lost
 *                             a race, for the confirm's exit (clash marks below)
 *   tp_btf/kfree_skb          table-full refusals, by ctop_kfree_skb above,
 *                             where the kernel frees them with the reason
 *                             NETFILTER_DROP (Debian's 6.1 does): it runs only
 *                             when a packet is dropped
 *   __nf_conntrack_alloc      only on kernels without that reason (the
 *                             loader's fallback): an error return is a
 *                             table-full refusal; tuple from its args. It
 *                             runs for every new flow.
 *   early_drop                marks the task as evicting for its duration
 *   __nf_ct_delete_from_lists an entry leaves the hash table: a deletion, and
 *                             an early drop when early_drop() is running
 *
 * fentry runs one program per new flow, the confirm's exit, which still has
 * its skb argument. kprobe: a kretprobe has no arguments, so the confirm (and,
 * on the fallback, the alloc) results need a small stack per task that keeps
 * them from entry to return. Per task, it stays exact when a softirq on the same CPU confirms
 * its own entry in the middle of ours (the softirq runs on the interrupted
 * task and finishes first: last in, first out). It lives in task-local
 * storage (5.11+; tracing and kprobe programs since 5.12): created once per
 * task, then found through the task itself, so a call costs no hash lookup,
 * allocation or deletion.
 */
#define CTOP_FRAMES 4
struct ctop_frames {
	__u32 depth;
	__u32 pad;
	__u64 a[CTOP_FRAMES];
	__u64 b[CTOP_FRAMES];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ctop_frames);
} confirm_frames SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ctop_frames);
} alloc_frames SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ctop_frames);
} early_drop_frames SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, CTOP_DEFAULT_MAX_PORTS); /* resized by the loader, as port_counts */
	__type(key, struct ctop_port_key);
	__type(value, struct ctop_port_events);
} port_events SEC(".maps");

/* The first CTOP_PORT_SLOTS ports each CPU sees, in front of port_events
 * (ctop.h, struct ctop_port_event_slot): no hash on the hot path. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CTOP_PORT_SLOTS); /* 1 for the netfilter tier (the loader) */
	__type(key, __u32);
	__type(value, struct ctop_port_event_slot);
} port_event_slots SEC(".maps");

enum ct_event { EV_DELETE, EV_EARLY_DROP, EV_INSERT_FAILED, EV_CLASH };

static __always_inline void frame_push(void *map, __u64 a, __u64 b)
{
	struct ctop_frames *f = bpf_task_storage_get(map, bpf_get_current_task_btf(), 0,
						     BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (!f)
		return; /* no memory for the task's first frame: its exit finds none */
	if (f->depth < CTOP_FRAMES) {
		__u32 d = f->depth & (CTOP_FRAMES - 1);

		f->a[d] = a;
		f->b[d] = b;
	}
	/* past CTOP_FRAMES the frame is lost but the depth stays balanced */
	f->depth++;
}

/* Returns false when the entry was never pushed (the probe attached while
 * the function was running) or the frame was lost.
 *
 * want_a != 0 (fexit, which still has the arguments): take the newest frame
 * whose `a` matches and drop the ones above it. A program run is skipped when
 * the same program is already running on this CPU (a softirq interrupting it):
 * a skipped entry leaves no frame, and this exit must not take the outer
 * call's; a skipped exit leaves a stale frame, which the outer exit drops. */
static __always_inline bool frame_pop(void *map, __u64 want_a, __u64 *a, __u64 *b)
{
	struct ctop_frames *f = bpf_task_storage_get(map, bpf_get_current_task_btf(), 0, 0);

	if (!f || f->depth == 0)
		return false;
	if (want_a && f->depth <= CTOP_FRAMES) {
		__u32 depth = f->depth, found = 0;

#pragma unroll
		for (int i = CTOP_FRAMES - 1; i >= 0; i--) {
			if (!found && (__u32)i < depth && f->a[i] == want_a) {
				found = i + 1;
				*a = f->a[i];
				*b = f->b[i];
			}
		}
		if (!found)
			return false;
		f->depth = found - 1;
		return true;
	}
	f->depth--;
	if (f->depth < CTOP_FRAMES) {
		__u32 d = f->depth & (CTOP_FRAMES - 1);

		*a = f->a[d];
		*b = f->b[d];
		return true;
	}
	return false;
}

static __always_inline bool in_early_drop(void)
{
	struct ctop_frames *f = bpf_task_storage_get(&early_drop_frames, bpf_get_current_task_btf(), 0, 0);

	return f && f->depth > 0;
}

/* A conntrack tuple (original direction) into a map key. `tp` is either a
 * copy on the stack or, in fentry programs, a BTF pointer into the entry
 * itself (each field an inline load, no helper call). */
static __always_inline void tuple_key(const struct nf_conntrack_tuple *tp, __u32 netns, struct ctop_tuple_key *t)
{
	t->netns = netns;
	t->family = tp->src.l3num;
	t->proto = tp->dst.protonum;
	if (t->proto == IPPROTO_ICMP || t->proto == CTOP_IPPROTO_ICMPV6) {
		t->sport = bpf_ntohs(tp->src.u.icmp.id);
		t->dport = tp->dst.u.icmp.type;
	} else {
		t->sport = bpf_ntohs(tp->src.u.all);
		t->dport = bpf_ntohs(tp->dst.u.all);
	}
	__builtin_memcpy(t->saddr, &tp->src.u3, CTOP_ADDR_LEN);
	__builtin_memcpy(t->daddr, &tp->dst.u3, CTOP_ADDR_LEN);
}

/* A tuple the program has only as a number (kprobe arguments): one read of
 * the whole tuple (its own layout has not changed since conntrack's
 * beginnings), not one helper call per field. */
static __always_inline void tuple_key_read(const void *tp, __u32 netns, struct ctop_tuple_key *t)
{
	struct nf_conntrack_tuple tup;

	t->netns = netns;
	if (bpf_probe_read_kernel(&tup, sizeof(tup), tp))
		return;
	tuple_key(&tup, netns, t);
}

/*
 * What the programs need of a conntrack entry they have only as a number
 * (skb->_nfct, or a kprobe argument; 6.1 has no bpf_rdonly_cast to make it a
 * BTF pointer): the original tuple, the status and the namespace. They lie in
 * that order in struct nf_conn on every kernel (the tuples, then status, then
 * ct_net), so one bpf_probe_read_kernel of the span from the original tuple
 * to ct_net reads them all (112 bytes on 6.1; the offsets are CO-RE
 * relocated, so they are constants to the verifier).
 */
#define CTOP_CT_SPAN_MAX 192
struct ct_view {
	__u64 span[CTOP_CT_SPAN_MAX / 8]; /* starts with the original tuple */
	unsigned long status;
	__u64 net; /* struct net *; 0 without CONFIG_NET_NS */
};

static __always_inline bool ct_read(__u64 ct, struct ct_view *v)
{
	/* u64: u32 arithmetic costs a zero-extension per step at run time */
	__u64 tup = bpf_core_field_offset(struct nf_conn, tuplehash) +
		    bpf_core_field_offset(struct nf_conntrack_tuple_hash, tuple);
	__u64 st = bpf_core_field_offset(struct nf_conn, status);
	__u64 net = 0, end = st + sizeof(unsigned long), len;

	if (bpf_core_field_exists(((struct nf_conn *)0)->ct_net.net)) {
		net = bpf_core_field_offset(struct nf_conn, ct_net.net);
		if (net + 8 > end)
			end = net + 8;
	}
	len = end - tup;
	if (!ct || st < tup + sizeof(struct nf_conntrack_tuple) || (net && net < tup) || len > CTOP_CT_SPAN_MAX)
		return false;
	if (bpf_probe_read_kernel(v->span, len, (void *)(ct + tup)))
		return false;
	v->status = *(unsigned long *)((__u8 *)v->span + (st - tup));
	v->net = net ? *(__u64 *)((__u8 *)v->span + (net - tup)) : 0;
	return true;
}

/* The namespace of an entry read by ct_read(): conntrack confirms at a hook
 * of the entry's own namespace, so the skb's device (a BTF pointer in fentry
 * programs) is usually in it and gives the inode number by inline loads;
 * anything else costs one read. */
static __always_inline __u32 view_netns(const struct ct_view *v, struct net_device *dev)
{
	/* a local: BPF_CORE_READ would relocate the access to ct_view too */
	struct net *net = (struct net *)v->net;

	if (!net)
		return 0;
	if (bpf_core_field_exists(dev->nd_net.net) && dev) {
		struct net *dev_net = dev->nd_net.net, *p = dev_net;

		/* an opaque copy: after the comparison the compiler would load
		 * through `net`, a number to the verifier */
		asm volatile("" : "+r"(p));
		if (dev_net == net)
			return p->ns.inum;
	}
	return BPF_CORE_READ(net, ns.inum);
}

/* Per-port event counters: the CPU's direct-mapped slot when the port owns
 * it (as count_port() does for inserts), else the hash. */
static __always_inline struct ctop_port_events *port_events_of(const struct ctop_port_key *k)
{
	struct ctop_port_event_slot *ps;
	struct ctop_port_events *v;
	__u64 key;
	__u32 idx;

	__builtin_memcpy(&key, k, sizeof(key));
	idx = ctop_port_slot_index(key);
	ps = bpf_map_lookup_elem(&port_event_slots, &idx);
	if (ps && slot_owned(&ps->key, key))
		return &ps->events;
	v = bpf_map_lookup_elem(&port_events, k);
	if (!v) {
		struct ctop_port_events zero = {};

		if (map_full(CTOP_FULL_EVENTS))
			return 0;
		if (bpf_map_update_elem(&port_events, k, &zero, BPF_NOEXIST) == -E2BIG)
			mark_full(CTOP_FULL_EVENTS);
		v = bpf_map_lookup_elem(&port_events, k);
	}
	return v;
}

static __always_inline void count_port_event(const struct ctop_port_key *k, enum ct_event ev)
{
	struct ctop_port_events *v = port_events_of(k);

	if (!v) {
		total_inc(CTOP_TOTAL_EVENTS_OVERFLOW);
		return;
	}
	/* atomic for the same reason as total_inc() */
	switch (ev) {
	case EV_DELETE: /* the reader derives `entries` from these (ctop.h) */
		__sync_fetch_and_add(&v->deletes, 1);
		break;
	case EV_EARLY_DROP:
		__sync_fetch_and_add(&v->early_drops, 1);
		break;
	case EV_INSERT_FAILED:
		__sync_fetch_and_add(&v->insert_failed, 1);
		break;
	case EV_CLASH:
		__sync_fetch_and_add(&v->clashes, 1);
		break;
	}
}

static __always_inline void count_ct_event(const struct ctop_tuple_key *t, enum ct_event ev)
{
	struct ctop_port_key k = {
		.netns = t->netns,
		.family = t->family,
		.proto = t->proto,
		.port = t->dport,
	};

	count_port_event(&k, ev);
}

#define CTOP_RTCF_LOCAL 0x80000000U /* include/uapi/linux/in_route.h */
#define CTOP_RTF_LOCAL 0x80000000U  /* include/uapi/linux/ipv6_route.h */

/*
 * The role of an entry confirmed by __nf_conntrack_confirm(skb), from the skb
 * alone (these tiers have no hook state). Kernel facts relied on, unchanged
 * from 4.19 to 6.18 and exercised on 6.1 by the guest self-test: skb_iif is 0 on an skb built by this host (it is set on receive, in
 * __netif_receive_skb_core); a locally sent packet is confirmed at
 * POST_ROUTING after ip_output()/ip6_output() set skb->dev to the output
 * device, loopback for local traffic. A received packet is confirmed at
 * LOCAL_IN (delivered) or POST_ROUTING (forwarded) and carries its input
 * route in skb->_skb_refdst (bit 0 is SKB_DST_NOREF): a struct rtable or
 * rt6_info, both beginning with their struct dst_entry; a route to a local
 * address has RTCF_LOCAL in rtable.rt_flags (ip_route_input_slow) or
 * RTF_LOCAL in rt6_info.rt6i_flags (addrconf's local routes). A forwarded
 * packet carries its output route, never local.
 *
 * The skb's fields are read by the caller (inline loads in fentry programs,
 * helper reads in kprobe ones); the route only for received packets.
 */
static __always_inline __u32 skb_role(int iif, bool out_loopback, unsigned long refdst, __u8 family)
{
	__u32 flags;

	if (!iif)
		return out_loopback ? CTOP_ROLE_LOCAL : CTOP_ROLE_CLIENT;
	refdst &= ~1UL;
	if (!refdst)
		return CTOP_ROLE_FORWARD;
	if (family == CTOP_AF_INET)
		flags = BPF_CORE_READ((struct rtable *)refdst, rt_flags) & CTOP_RTCF_LOCAL;
	else
		flags = BPF_CORE_READ((struct rt6_info *)refdst, rt6i_flags) & CTOP_RTF_LOCAL;
	return flags ? CTOP_ROLE_SERVER : CTOP_ROLE_FORWARD;
}

/* An entry __nf_conntrack_confirm() put in the table, still the skb's. */
/* nf_ct_resolve_clash_harder (kernels >= 5.10, UDP) keeps the loser in the
 * table marked IPS_NAT_CLASH: an insert, and a clash. */
static __always_inline bool kept_clash(unsigned long status)
{
	return bpf_core_enum_value_exists(enum ip_conntrack_status, IPS_NAT_CLASH_BIT) &&
	       (status & (1UL << bpf_core_enum_value(enum ip_conntrack_status, IPS_NAT_CLASH_BIT)));
}

static __always_inline void inserted(struct ctop_tuple_key *t, unsigned long status, __u32 role)
{
	/* the inserts total is the rings' claimed positions (ring_claim); the
	 * port's live entries are derived from its inserts (ctop.h, struct
	 * ctop_port_events) */
	count_event(t, role);
	if (kept_clash(status)) {
		total_inc(CTOP_TOTAL_CLASHES);
		count_ct_event(t, EV_CLASH);
	}
}

/* inserted() for an entry read by ct_read(): the key is built straight into
 * the ring slot (no key on the stack and no copy of it), and the port's key
 * taken back from there. */
static __always_inline void inserted_view(const struct ct_view *v, __u32 netns, __u32 role)
{
	struct ctop_port_key pk;
	struct ctop_tuple_slot *slot;
	__u64 pos;

	slot = ring_claim(&pos);
	if (!slot)
		return; /* cannot happen: see ring_claim */
	tuple_key((const struct nf_conntrack_tuple *)v->span, netns, &slot->key);
	slot->key.pad = 0;
	slot->pad = 0;
	publish_seq(&slot->seq, pos + 1);
	pk.netns = netns;
	pk.family = slot->key.family;
	pk.proto = slot->key.proto;
	pk.port = slot->key.dport;
	count_port(&pk, role);
	if (kept_clash(v->status)) {
		total_inc(CTOP_TOTAL_CLASHES);
		count_port_event(&pk, EV_CLASH);
	}
}

static __always_inline bool is_confirmed(unsigned long status)
{
	return status & (1UL << bpf_core_enum_value(enum ip_conntrack_status, IPS_CONFIRMED_BIT));
}

/* The end of __nf_conntrack_alloc: an error pointer is a refusal. `orig` is
 * a BTF pointer (fentry) or a number (kprobe). */
static __always_inline bool alloc_failed(void *ret)
{
	/* IS_ERR(): the top 4095 addresses encode -errno */
	return (unsigned long)ret >= (unsigned long)-4095;
}

static __always_inline void refused(struct ctop_tuple_key *t)
{
	total_inc(CTOP_TOTAL_DROPS);
	count_event(t, CTOP_ROLE_COUNT);
}

/* __nf_ct_delete_from_lists(ct): the entry leaves the hash table. */
static __always_inline void deleted(const struct ctop_tuple_key *t)
{
	total_inc(CTOP_TOTAL_DELETES);
	count_ct_event(t, EV_DELETE);
	if (in_early_drop()) {
		total_inc(CTOP_TOTAL_EARLY_DROPS);
		count_ct_event(t, EV_EARLY_DROP);
	}
}

/* ---- tier "fentry" ----
 *
 * Clash marks. When a new entry loses the race to enter the table and
 * __nf_ct_resolve_clash() resolves it, the skb is given the entry that won
 * (already in the table) and the loser is freed: at the confirm's exit
 * nothing else tells this from a fresh insert. So the clash's entry leaves a
 * mark for that exit: the skb, the loser and the loser's key, read while the
 * loser is still alive. Marks live in task-local storage, created only when a
 * clash happens (the confirm's exit runs on the same task; a softirq's
 * confirm nested in ours has another skb); `clash_marks_live` counts them, so
 * the exit of every other confirm leaves after one load. A mark older than a
 * second (its exit was skipped: the same program was already running on this
 * CPU) is taken over by the next clash of its task.
 */
#define CTOP_CLASH_MARKS 4
#define CTOP_CLASH_MARK_STALE_NS 1000000000ULL
struct ctop_clash_marks {
	__u64 skb[CTOP_CLASH_MARKS]; /* 0: free */
	__u64 loser[CTOP_CLASH_MARKS];
	__u64 at_ns[CTOP_CLASH_MARKS];
	struct ctop_tuple_key key[CTOP_CLASH_MARKS]; /* family 0: another namespace than --netns */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ctop_clash_marks);
} clash_marks SEC(".maps");

volatile __u32 clash_marks_live;

/* The key of an entry the program has as a number, with the namespace filter:
 * false when it is not to be counted. */
static __always_inline bool fe_ct_key(__u64 ct, struct net_device *dev, struct ct_view *v, struct ctop_tuple_key *t)
{
	__u32 netns;

	if (!ct_read(ct, v))
		return false;
	netns = view_netns(v, dev);
	if (target_netns && netns != target_netns)
		return false;
	tuple_key((const struct nf_conntrack_tuple *)v->span, netns, t);
	return true;
}

SEC("fentry/__nf_ct_resolve_clash")
int BPF_PROG(ctop_fe_clash_enter, struct sk_buff *skb)
{
	__u64 loser = skb->_nfct & ~CTINFO_MASK, now = bpf_ktime_get_ns();
	struct ctop_clash_marks *m;
	struct ctop_tuple_key t = {};
	struct ct_view v;
	int i = -1, fresh = 0;

	if (!loser)
		return 0;
	m = bpf_task_storage_get(&clash_marks, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!m)
		return 0;
#pragma unroll
	for (int j = CTOP_CLASH_MARKS - 1; j >= 0; j--) {
		if (!m->skb[j]) {
			i = j;
			fresh = 1;
		} else if (!fresh && now - m->at_ns[j] > CTOP_CLASH_MARK_STALE_NS) {
			i = j;
		}
	}
	if (i < 0)
		return 0; /* more clashes pending on one task than marks: cannot happen (nesting depth) */
	i &= CTOP_CLASH_MARKS - 1;
	if (!fe_ct_key(loser, skb->dev, &v, &t))
		t.family = 0;
	m->key[i] = t;
	m->loser[i] = loser;
	m->at_ns[i] = now;
	m->skb[i] = (__u64)skb;
	if (fresh)
		__sync_fetch_and_add(&clash_marks_live, 1);
	return 0;
}

/* True when `skb` carries the winner of a clash its own entry lost: then `t`
 * is the loser's key (family 0: not counted). */
static __always_inline bool clash_mark_take(struct sk_buff *skb, __u64 ct, struct ctop_tuple_key *t)
{
	struct ctop_clash_marks *m = bpf_task_storage_get(&clash_marks, bpf_get_current_task_btf(), 0, 0);

	if (!m)
		return false;
#pragma unroll
	for (int i = 0; i < CTOP_CLASH_MARKS; i++) {
		if (m->skb[i] == (__u64)skb) {
			__u64 loser = m->loser[i];

			*t = m->key[i];
			m->skb[i] = 0;
			__sync_fetch_and_add(&clash_marks_live, -1);
			/* no switch: __nf_ct_resolve_clash refused, or
			 * nf_ct_resolve_clash_harder kept the loser */
			return loser != ct;
		}
	}
	return false;
}

SEC("fexit/__nf_conntrack_confirm")
int BPF_PROG(ctop_fe_confirm_exit, struct sk_buff *skb, int ret)
{
	unsigned long nfct = skb->_nfct;
	__u64 ct = nfct & ~CTINFO_MASK;
	struct ctop_tuple_key t = {};
	struct net_device *dev;
	struct ct_view v;
	__u32 netns;

	/* the reply direction returns at once, unconfirmed (ctinfo >= IP_CT_IS_REPLY) */
	if (ret == NF_ACCEPT && (nfct & CTINFO_MASK) >= 3)
		return 0;
	if (clash_marks_live && clash_mark_take(skb, ct, &t)) {
		if (t.family) {
			total_inc(CTOP_TOTAL_CLASHES);
			count_ct_event(&t, EV_CLASH);
		}
		return 0;
	}
	dev = skb->dev;
	if (!ct_read(ct, &v))
		return 0;
	netns = view_netns(&v, dev);
	if (target_netns && netns != target_netns)
		return 0;
	if (ret != NF_ACCEPT) {
		/* lost a race it could not resolve, chain too long, or dying */
		tuple_key((const struct nf_conntrack_tuple *)v.span, netns, &t);
		total_inc(CTOP_TOTAL_INSERT_FAILED);
		count_ct_event(&t, EV_INSERT_FAILED);
		return 0;
	}
	if (!is_confirmed(v.status))
		return 0;
	inserted_view(&v, netns,
		      skb_role(skb->skb_iif, dev && (dev->flags & CTOP_IFF_LOOPBACK), skb->_skb_refdst,
			       ((const struct nf_conntrack_tuple *)v.span)->src.l3num));
	return 0;
}

SEC("fexit/__nf_conntrack_alloc")
int BPF_PROG(ctop_fe_alloc_exit, struct net *net, const struct nf_conntrack_zone *zone,
	     const struct nf_conntrack_tuple *orig, const struct nf_conntrack_tuple *repl, gfp_t gfp, __u32 hash,
	     struct nf_conn *ret)
{
	struct ctop_tuple_key t = {};
	__u32 netns;

	if (!alloc_failed(ret))
		return 0;
	netns = net->ns.inum;
	if (target_netns && netns != target_netns)
		return 0;
	tuple_key(orig, netns, &t);
	refused(&t);
	return 0;
}

/* early_drop() runs on this task: a deletion meanwhile is an eviction
 * (deleted() looks for the mark). Both function tiers mark its entry and
 * exit with the same bodies; reading no argument, a kprobe serves both ends. */
static __always_inline void early_drop_begin(void)
{
	frame_push(&early_drop_frames, 0, 0);
}

static __always_inline void early_drop_end(void)
{
	__u64 a, b;

	frame_pop(&early_drop_frames, 0, &a, &b);
}

#define EARLY_DROP_HOOK(fe_sec, kp_sec, name, body)                          \
	SEC(fe_sec) int BPF_PROG(ctop_fe_##name) { body(); return 0; }        \
	SEC(kp_sec) int BPF_KPROBE(ctop_kp_##name) { body(); return 0; }

EARLY_DROP_HOOK("fentry/early_drop", "kprobe/early_drop", early_drop_enter, early_drop_begin)
EARLY_DROP_HOOK("fexit/early_drop", "kretprobe/early_drop", early_drop_exit, early_drop_end)

SEC("fentry/__nf_ct_delete_from_lists")
int BPF_PROG(ctop_fe_unlink, struct nf_conn *ct)
{
	struct ctop_tuple_key t = {};
	__u32 netns = 0;

	/* ct is a BTF pointer here: every read below is an inline load */
	if (bpf_core_field_exists(ct->ct_net.net))
		netns = ct->ct_net.net->ns.inum;
	if (target_netns && netns != target_netns)
		return 0;
	tuple_key(&ct->tuplehash[0].tuple, netns, &t);
	deleted(&t);
	return 0;
}

/* ---- tier "kprobe": the same functions, for kernels that refuse fentry ---- */

/* The key of an entry or the namespace of a struct net, the program having
 * either only as a number. */
static __always_inline bool kp_ct_key(__u64 ct, struct ct_view *v, struct ctop_tuple_key *t)
{
	__u32 netns;

	struct net *net;

	if (!ct_read(ct, v))
		return false;
	net = (struct net *)v->net; /* a local, as in view_netns() */
	netns = net ? BPF_CORE_READ(net, ns.inum) : 0;
	if (target_netns && netns != target_netns)
		return false;
	tuple_key((const struct nf_conntrack_tuple *)v->span, netns, t);
	return true;
}

SEC("kprobe/__nf_conntrack_confirm")
int BPF_KPROBE(ctop_kp_confirm_enter, struct sk_buff *skb)
{
	frame_push(&confirm_frames, (__u64)skb, BPF_CORE_READ(skb, _nfct) & ~CTINFO_MASK);
	return 0;
}

/* `orig` is the entry the skb carried on entry, `ret` the verdict. */
/* What the confirm's return probe needs of its skb, a number here: four
 * fields within the first ~150 bytes of struct sk_buff, read in one
 * bpf_probe_read_kernel of the span that holds them (offsets CO-RE relocated,
 * constants to the verifier), into a ct_view's buffer that is no longer needed
 * (the stack has room for one). */
struct skb_view {
	unsigned long nfct, refdst;
	__u64 dev;
	int iif;
};

#define SPAN_LO(lo, o) ((o) < (lo) ? (o) : (lo))
#define SPAN_HI(hi, o, n) ((o) + (n) > (hi) ? (o) + (n) : (hi))

static __always_inline bool skb_read(__u64 skb, __u64 *span, struct skb_view *v)
{
	__u32 dev = bpf_core_field_offset(struct sk_buff, dev);
	__u32 ref = bpf_core_field_offset(struct sk_buff, _skb_refdst);
	__u32 nfct = bpf_core_field_offset(struct sk_buff, _nfct);
	__u32 iif = bpf_core_field_offset(struct sk_buff, skb_iif);
	__u32 lo = SPAN_LO(SPAN_LO(SPAN_LO(dev, ref), nfct), iif);
	__u32 hi = SPAN_HI(SPAN_HI(SPAN_HI(SPAN_HI(0, dev, 8), ref, 8), nfct, 8), iif, 4);

	if (!skb || hi - lo > CTOP_CT_SPAN_MAX)
		return false;
	if (bpf_probe_read_kernel(span, hi - lo, (void *)(skb + lo)))
		return false;
	v->dev = *(__u64 *)((__u8 *)span + (dev - lo));
	v->refdst = *(unsigned long *)((__u8 *)span + (ref - lo));
	v->nfct = *(unsigned long *)((__u8 *)span + (nfct - lo));
	v->iif = *(int *)((__u8 *)span + (iif - lo));
	return true;
}

SEC("kretprobe/__nf_conntrack_confirm")
int BPF_KRETPROBE(ctop_kp_confirm_exit, int ret)
{
	struct ctop_tuple_key t = {};
	struct net_device *dev;
	__u64 skb_arg, orig;
	struct skb_view s;
	struct ct_view v;

	if (!frame_pop(&confirm_frames, 0, &skb_arg, &orig))
		return 0;
	if (!kp_ct_key(orig, &v, &t))
		return 0;
	if (ret != NF_ACCEPT) {
		/* lost a race it could not resolve, chain too long, or dying */
		total_inc(CTOP_TOTAL_INSERT_FAILED);
		count_ct_event(&t, EV_INSERT_FAILED);
		return 0;
	}
	if (!skb_read(skb_arg, v.span, &s))
		return 0;
	if ((s.nfct & ~CTINFO_MASK) != orig) {
		/* __nf_ct_resolve_clash: the skb now carries the entry that was
		 * confirmed first; ours is freed without entering the table (so
		 * its status, read after that, says nothing: check this first) */
		total_inc(CTOP_TOTAL_CLASHES);
		count_ct_event(&t, EV_CLASH);
		return 0;
	}
	/* a packet in the reply direction returns early, still unconfirmed */
	if (!is_confirmed(v.status))
		return 0;
	dev = (struct net_device *)s.dev;
	inserted(&t, v.status,
		 skb_role(s.iif, dev && (BPF_CORE_READ(dev, flags) & CTOP_IFF_LOOPBACK), s.refdst, t.family));
	return 0;
}

SEC("kprobe/__nf_conntrack_alloc")
int BPF_KPROBE(ctop_kp_alloc_enter, struct net *net, const struct nf_conntrack_zone *zone,
	       const struct nf_conntrack_tuple *orig)
{
	frame_push(&alloc_frames, (__u64)net, (__u64)orig);
	return 0;
}

SEC("kretprobe/__nf_conntrack_alloc")
int BPF_KRETPROBE(ctop_kp_alloc_exit, void *ret)
{
	struct ctop_tuple_key t = {};
	__u64 net, orig;
	__u32 netns;

	if (!frame_pop(&alloc_frames, 0, &net, &orig) || !alloc_failed(ret))
		return 0;
	netns = BPF_CORE_READ((struct net *)net, ns.inum);
	if (target_netns && netns != target_netns)
		return 0;
	tuple_key_read((const void *)orig, netns, &t);
	refused(&t);
	return 0;
}

SEC("kprobe/__nf_ct_delete_from_lists")
int BPF_KPROBE(ctop_kp_unlink, struct nf_conn *ct)
{
	struct ctop_tuple_key t = {};
	struct ct_view v;

	if (kp_ct_key((__u64)ct, &v, &t))
		deleted(&t);
	return 0;
}

/* ---------------------------------------------------------------------------
 * Reading: which refused tuples moved since the last read (new flows' tuples
 * are read from their rings in place: native/core/tuple_ring.c).
 *
 * Never attached: user space runs it with BPF_PROG_TEST_RUN (a netfilter
 * program, because that program type and test runs of it are what this
 * kernel class allows; iter/bpf_map_elem is refused here). It walks the
 * drop map in the kernel (bpf_for_each_map_elem, 5.13+) and writes only the
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
	__uint(max_entries, CTOP_DEFAULT_MAX_DROP_TUPLES); /* resized by the loader: as tuple_drops */
	__type(key, __u32);
	__type(value, struct ctop_tuple_moved);
} moved_out SEC(".maps");

/* The run's results; .bss is memory-mapped by the skeleton. */
volatile __u32 collect_n;

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

static __always_inline void collect_from(void *map)
{
	struct moved_ctx c = {};

	bpf_for_each_map_elem(map, moved_cb, &c, 0);
	collect_n = c.n;
}

SEC("netfilter")
int ctop_collect_moved(struct bpf_nf_ctx *ctx)
{
	collect_from(&tuple_drops);
	return NF_ACCEPT;
}

/* The same collector for the function tiers, whose kernels may predate BPF
 * netfilter programs (6.1): a tc program, which BPF_PROG_TEST_RUN runs on
 * every kernel with bpf_for_each_map_elem (5.13+). Loaded with the fentry or
 * kprobe tier, never attached. */
SEC("tc")
int ctop_collect_moved_tc_drops(struct __sk_buff *skb)
{
	collect_from(&tuple_drops);
	return 0;
}
