// SPDX-License-Identifier: GPL-2.0
/* Open, load and read ctop's BPF object through its libbpf skeleton. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "ctop_core.h"
#include "ctop.skel.h"

#define CTOP_MAX_FUNC_LINKS 16

struct ctop_probe {
	struct ctop_bpf *skel;
	struct bpf_link *drop_link;
	/* function tiers: one link per program, attached at load */
	struct bpf_link *func_links[CTOP_MAX_FUNC_LINKS];
	int nfunc_links;
	int tier;
	int drops_via; /* enum ctop_drops_via, resolved */
	int ncpus;
	uint32_t max_ports, max_tuples, max_drop_tuples;
	/* ctop_probe_read_tuple_deltas: moved_out mapped read-only, and buffers
	 * sized by the map capacities (so bounded), made on first use and kept:
	 * fresh multi-megabyte buffers each second cost more in page faults
	 * than the reading itself */
	const struct ctop_tuple_moved *moved_out;
	size_t moved_out_len;
	struct ctop_tuple_moved *moved_buf[2];
	struct ctop_tuple_rec *moved;
	/* growth handed over so far from the drop map, i.e. the sum of its
	 * `reported` fields: see drop_map_unchanged() */
	uint64_t drop_tuple_sum;
	/* new flows' tuples: the per-CPU rings, read in place */
	struct ctop_tuple_ring *ring;
	uint32_t ring_bits;
	/* keys in the per-port hash at the last ctop_probe_read_ports: what
	 * max_ports bounds (ports counted in the per-CPU slots are not in it) */
	uint32_t port_hash_entries;
};

/* ---- tiers ------------------------------------------------------------------- */
/* The tiers' names, in enum ctop_tier order: best first. */
static const char *const tier_names[CTOP_TIER_COUNT] = {
	[CTOP_TIER_FENTRY] = "fentry",
	[CTOP_TIER_KPROBE] = "kprobe",
	[CTOP_TIER_NETFILTER] = "netfilter",
};

const char *ctop_tier_name(int tier)
{
	return tier >= 0 && tier < CTOP_TIER_COUNT ? tier_names[tier] : NULL;
}

int ctop_tier_by_name(const char *name)
{
	for (int t = 0; t < CTOP_TIER_COUNT; t++)
		if (!strcmp(name, tier_names[t]))
			return t;
	return -1;
}

/* The tuple collectors: loaded with their tier, run by test runs, never attached. */
static int is_collector(const struct ctop_probe *p, const struct bpf_program *prog)
{
	return prog == p->skel->progs.ctop_collect_moved || prog == p->skel->progs.ctop_collect_moved_tc_drops;
}

int ctop_tier_of_program(const char *name)
{
	const char *rest = strchr(name, '_');

	if (rest && !strncmp(rest, "_fe_", 4))
		return CTOP_TIER_FENTRY;
	if (rest && !strncmp(rest, "_kp_", 4))
		return CTOP_TIER_KPROBE;
	return CTOP_TIER_NETFILTER;
}

int ctop_drops_via(int want)
{
	if (want != CTOP_DROPS_AUTO)
		return want;
	return ctop_btf_kfree_skb_netfilter_drop() ? CTOP_DROPS_KFREE_SKB : CTOP_DROPS_ALLOC;
}

const char *ctop_drops_via_name(int via)
{
	return via == CTOP_DROPS_KFREE_SKB ? "kfree_skb" : via == CTOP_DROPS_ALLOC ? "alloc" : "auto";
}

int ctop_tier_runs_program(int tier, int via, const char *name)
{
	const char *rest = strchr(name, '_');
	int of = ctop_tier_of_program(name);

	if (tier == CTOP_TIER_NETFILTER)
		return of == tier;
	/* PREFIX_kfree_skb: the netfilter tier's drop program, shared */
	if (rest && !strcmp(rest, "_kfree_skb"))
		return via == CTOP_DROPS_KFREE_SKB;
	/* PREFIX_fe_alloc_*, PREFIX_kp_alloc_*: the fallback */
	if (of == tier && rest && !strncmp(rest + 4, "alloc_", 6))
		return via == CTOP_DROPS_ALLOC;
	return of == tier;
}

/* Does a program belong to the probe's tier? By its name, except the function
 * tiers' tc collector, which both of them load. */
static int prog_in_tier(const struct ctop_probe *p, const struct bpf_program *prog)
{
	if (prog == p->skel->progs.ctop_collect_moved_tc_drops)
		return p->tier == CTOP_TIER_FENTRY || p->tier == CTOP_TIER_KPROBE;
	return ctop_tier_runs_program(p->tier, p->drops_via, bpf_program__name(prog));
}

static enum ctop_prog_attach prog_attach(const struct ctop_probe *p, const struct bpf_program *prog)
{
	if (prog == p->skel->progs.ctop_nf_confirm)
		return CTOP_ATTACH_PER_NETNS;
	if (prog == p->skel->progs.ctop_kfree_skb)
		return CTOP_ATTACH_ON_DROPS;
	return CTOP_ATTACH_AT_LOAD;
}

/*
 * The order a function tier's programs attach in. Attaching takes a while
 * (each fentry/fexit program is a trampoline update; under emulation the
 * whole set takes about a second), and events go on meanwhile, so what runs
 * in that window must not leave a count unbalanced for good:
 *   0  the deletions (__nf_ct_delete_from_lists): a port's live entries are
 *      its inserts minus its deletions (add_live_entries), so every entry
 *      whose insert is counted must have its deletion counted too. With the
 *      deletions first, the window can only leave what any start-up leaves:
 *      deletions of entries inserted before ctop counted them.
 *   1  the ends of the marks before their beginnings (early_drop's exit, the
 *      kretprobes): a return that finds no frame counts nothing, while a
 *      frame pushed with no return probe yet would stay on its task's stack
 *   2  the beginnings: early_drop's entry, the kprobes on entry, and the
 *      fentry tier's clash marks, which its confirm exit needs (without the
 *      mark, a resolved clash's skb carries the winner, an insert already
 *      counted)
 *   3  the fentry tier's confirm exit, which counts the inserts: last
 */
static int attach_rank(const struct ctop_probe *p, const struct bpf_program *prog)
{
	const struct ctop_bpf *s = p->skel;

	if (prog == s->progs.ctop_fe_unlink || prog == s->progs.ctop_kp_unlink)
		return 0;
	if (prog == s->progs.ctop_fe_early_drop_exit || prog == s->progs.ctop_kp_early_drop_exit ||
	    prog == s->progs.ctop_kp_confirm_exit || prog == s->progs.ctop_kp_alloc_exit)
		return 1;
	if (prog == s->progs.ctop_fe_confirm_exit)
		return 3;
	return 2;
}

/* Attach every program of a function tier but its drop program (tp_btf/kfree_skb:
 * after the seeds, by ctop_probe_attach_drops), in attach_rank order. Any
 * refusal refuses the tier: counts from a partial set would not add up. */
static int attach_funcs(struct ctop_probe *p, struct ctop_err *e)
{
	struct bpf_program *prog;

	for (int rank = 0; rank <= 3; rank++) {
		bpf_object__for_each_program(prog, p->skel->obj) {
			struct bpf_link *l;

			if (!bpf_program__autoload(prog) || is_collector(p, prog) ||
			    prog_attach(p, prog) != CTOP_ATTACH_AT_LOAD || attach_rank(p, prog) != rank)
				continue;
			if (p->nfunc_links >= CTOP_MAX_FUNC_LINKS)
				return ctop_err_set(e, E2BIG, "attach", "too many programs in the %s tier",
						    ctop_tier_name(p->tier));
			l = bpf_program__attach(prog);
			if (!l) {
				int err = -errno;

				return ctop_err_set(e, err, "attach", "the kernel refused to attach %s (%s): %s",
						    bpf_program__name(prog), bpf_program__section_name(prog),
						    strerror(-err));
			}
			p->func_links[p->nfunc_links++] = l;
		}
	}
	return 0;
}

/* ---- open / load / attach ---------------------------------------------------- */
int ctop_probe_open_load(const struct ctop_probe_opts *o, struct ctop_probe **out, struct ctop_err *e)
{
	struct ctop_probe *p;
	int err;

	ctop_libbpf_log_begin();
	p = calloc(1, sizeof(*p));
	if (!p)
		return ctop_err_set(e, ENOMEM, "open", "out of memory");
	p->ncpus = libbpf_num_possible_cpus();
	if (p->ncpus <= 0) {
		err = ctop_err_set(e, EINVAL, "open", "cannot read the number of possible CPUs");
		goto fail;
	}
	p->skel = ctop_bpf__open();
	if (!p->skel) {
		err = ctop_err_set(e, errno, "open", "cannot open the BPF object: %s", strerror(errno));
		goto fail;
	}
	p->max_ports = o->max_ports ? o->max_ports : CTOP_DEFAULT_MAX_PORTS;
	p->max_tuples = o->max_tuples ? o->max_tuples : CTOP_DEFAULT_MAX_TUPLES;
	/* each CPU's ring: the largest power of two within its share of
	 * --max-tuples, at least 256 */
	p->ring_bits = 8;
	while (p->ring_bits < 22 && ((uint64_t)p->ncpus << (p->ring_bits + 1)) <= p->max_tuples)
		p->ring_bits++;
	p->max_tuples = (uint32_t)p->ncpus << p->ring_bits;
	p->max_drop_tuples = o->max_drop_tuples ? o->max_drop_tuples : CTOP_DEFAULT_MAX_DROP_TUPLES;
	bpf_map__set_max_entries(p->skel->maps.port_counts, p->max_ports);
	bpf_map__set_max_entries(p->skel->maps.tuple_ring, p->max_tuples);
	bpf_map__set_max_entries(p->skel->maps.ring_heads, (uint32_t)p->ncpus);
	p->skel->rodata->ring_bits = p->ring_bits;
	bpf_map__set_max_entries(p->skel->maps.tuple_drops, p->max_drop_tuples);
	p->skel->rodata->target_netns = o->target_netns;
	p->tier = o->tier;
	if (!ctop_tier_name(o->tier)) {
		err = ctop_err_set(e, EINVAL, "open", "unknown probe tier %d", o->tier);
		goto fail;
	}
	p->drops_via = o->tier == CTOP_TIER_NETFILTER ? CTOP_DROPS_KFREE_SKB : ctop_drops_via(o->drops_via);
	{
		struct bpf_program *prog;

		bpf_object__for_each_program(prog, p->skel->obj)
			bpf_program__set_autoload(prog, prog_in_tier(p, prog));
	}
	if (o->tier == CTOP_TIER_NETFILTER) {
		/* the function tiers' maps are not used: keep them minimal */
		bpf_map__set_max_entries(p->skel->maps.port_events, 1);
		bpf_map__set_max_entries(p->skel->maps.port_event_slots, 1);
	} else {
		bpf_map__set_max_entries(p->skel->maps.port_events, p->max_ports);
	}
	/* Only the netfilter program needs struct nf_conn's id, in vmlinux:
	 * where conntrack is a module (Debian's 6.1) the type is in module BTF. */
	if (o->tier == CTOP_TIER_NETFILTER) {
		uint32_t id;

		err = ctop_btf_struct("nf_conn", &id, NULL, e);
		if (err)
			goto fail;
		p->skel->rodata->nf_conn_btf_id = id;
	}

	bpf_map__set_max_entries(p->skel->maps.moved_out, p->max_drop_tuples);
	bpf_program__set_type(p->skel->progs.ctop_nf_confirm, CTOP_BPF_PROG_TYPE_NETFILTER);
	bpf_program__set_expected_attach_type(p->skel->progs.ctop_nf_confirm, CTOP_BPF_NETFILTER);
	/* never attached, only test-run: the type is what lets it load here */
	bpf_program__set_type(p->skel->progs.ctop_collect_moved, CTOP_BPF_PROG_TYPE_NETFILTER);
	bpf_program__set_expected_attach_type(p->skel->progs.ctop_collect_moved, CTOP_BPF_NETFILTER);

	err = ctop_bpf__load(p->skel);
	if (err) {
		err = ctop_err_set(e, err, "load", "the kernel refused to load the %s programs: %s", ctop_tier_name(o->tier),
				   strerror(-err));
		goto fail;
	}
	err = ctop_tuple_ring_open(bpf_map__fd(p->skel->maps.tuple_ring), bpf_map__fd(p->skel->maps.ring_heads), p->ncpus,
				   p->ring_bits, &p->ring);
	if (err) {
		err = ctop_err_set(e, err, "load", "cannot map the tuple rings: %s", strerror(-err));
		goto fail;
	}
	if (o->tier != CTOP_TIER_NETFILTER) {
		err = attach_funcs(p, e);
		if (err)
			goto fail;
	}
	*out = p;
	return 0;
fail:
	ctop_probe_destroy(p); /* takes a half-built probe */
	return err;
}

int ctop_probe_open_best(const struct ctop_probe_opts *o, struct ctop_probe **out, struct ctop_tier_refusal *refused,
			 int *nrefused, struct ctop_err *e)
{
	int first = o->tier == CTOP_TIER_AUTO ? 0 : o->tier, last = o->tier == CTOP_TIER_AUTO ? CTOP_TIER_COUNT - 1 : o->tier;

	*nrefused = 0;
	*out = NULL;
	if (!ctop_tier_name(first))
		return ctop_err_set(e, EINVAL, "open", "unknown probe tier %d", o->tier);
	/* the tiers' choices read the kernel's BTF: parse it once for all of them */
	ctop_btf_hold();
	for (int t = first; t <= last; t++) {
		struct ctop_probe_opts one = *o;
		struct ctop_tier_refusal *r = &refused[(*nrefused)++];
		const char *log;
		size_t len;

		one.tier = t;
		memset(&r->err, 0, sizeof(r->err));
		if (ctop_probe_open_load(&one, out, &r->err) == 0) {
			(*nrefused)--;
			ctop_btf_release();
			return 0;
		}
		*out = NULL;
		r->tier = t;
		log = ctop_libbpf_log();
		len = strlen(log);
		if (len >= sizeof(r->log)) { /* its end: where the verifier says why */
			log += len - (sizeof(r->log) - 1);
			len = sizeof(r->log) - 1;
		}
		memcpy(r->log, log, len + 1);
		if (e)
			*e = r->err;
	}
	ctop_btf_release();
	return -refused[*nrefused - 1].err.err;
}

void ctop_probe_destroy(struct ctop_probe *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->nfunc_links; i++)
		bpf_link__destroy(p->func_links[i]);
	bpf_link__destroy(p->drop_link);
	ctop_tuple_ring_close(p->ring);
	ctop_bpf__destroy(p->skel);
	if (p->moved_out)
		munmap((void *)p->moved_out, p->moved_out_len);
	free(p->moved_buf[0]);
	free(p->moved_buf[1]);
	free(p->moved);
	free(p);
}

int ctop_probe_tier(const struct ctop_probe *p) { return p->tier; }

int ctop_probe_drops_via(const struct ctop_probe *p) { return p->drops_via; }

int ctop_probe_programs(const struct ctop_probe *p, struct ctop_prog_info *out, int max, int *n)
{
	struct bpf_program *prog;
	int i = 0;

	bpf_object__for_each_program(prog, p->skel->obj) {
		enum ctop_prog_attach how = prog_attach(p, prog);

		if (!bpf_program__autoload(prog) || is_collector(p, prog))
			continue;
		if (i >= max)
			return -E2BIG;
		snprintf(out[i].name, sizeof(out[i].name), "%s", bpf_program__name(prog));
		if (how == CTOP_ATTACH_PER_NETNS)
			snprintf(out[i].hook, sizeof(out[i].hook), "%s", ctop_nf_hook_desc);
		else if (how == CTOP_ATTACH_ON_DROPS) /* the drops it counts: consume_conntrack_drop */
			snprintf(out[i].hook, sizeof(out[i].hook), "%s, reason NETFILTER_DROP", bpf_program__section_name(prog));
		else
			snprintf(out[i].hook, sizeof(out[i].hook), "%s", bpf_program__section_name(prog));
		out[i].attach = how;
		{
			struct bpf_prog_info info;
			__u32 len = sizeof(info);

			memset(&info, 0, sizeof(info));
			out[i].recursion_misses =
				bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) ? 0 : info.recursion_misses;
		}
		/* function tiers: attached all or nothing at load (but the drop program) */
		out[i].attached = how == CTOP_ATTACH_AT_LOAD ? 1 : how == CTOP_ATTACH_ON_DROPS ? p->drop_link != NULL : 0;
		i++;
	}
	*n = i;
	return 0;
}

int ctop_probe_nf_prog_fd(const struct ctop_probe *p)
{
	return bpf_program__fd(p->skel->progs.ctop_nf_confirm);
}

void ctop_probe_capacity(const struct ctop_probe *p, uint32_t *ports, uint32_t *tuples, uint32_t *drop_tuples)
{
	*ports = p->max_ports;
	*tuples = p->max_tuples;
	*drop_tuples = p->max_drop_tuples;
}

uint32_t ctop_probe_port_hash_entries(const struct ctop_probe *p)
{
	return p->port_hash_entries;
}

int ctop_probe_attach_drops(struct ctop_probe *p, struct ctop_err *e)
{
	struct bpf_link *l;

	if (p->drop_link)
		return 0;
	ctop_libbpf_log_clear();
	l = bpf_program__attach(p->skel->progs.ctop_kfree_skb);
	if (!l) {
		int err = -errno;

		return ctop_err_set(e, err, "attach", "cannot attach to tracepoint kfree_skb: %s", strerror(-err));
	}
	p->drop_link = l;
	return 0;
}

int ctop_probe_seed_drops(struct ctop_probe *p, uint32_t netns, const uint32_t *per_cpu, int n,
			  struct ctop_err *e)
{
	uint32_t *vals = calloc((size_t)p->ncpus, sizeof(uint64_t)); /* per-CPU values are 8-byte aligned */
	int err;

	if (!vals)
		return ctop_err_set(e, ENOMEM, "seed", "out of memory");
	for (int i = 0; i < n && i < p->ncpus; i++)
		vals[i * 2] = per_cpu[i];
	err = bpf_map__update_elem(p->skel->maps.drop_seen, &netns, sizeof(netns), vals,
				   sizeof(uint64_t) * (size_t)p->ncpus, BPF_ANY);
	free(vals);
	if (err)
		return ctop_err_set(e, err, "seed", "cannot seed the drop baseline: %s", strerror(-err));
	return 0;
}

int ctop_probe_seed_drops_netns(struct ctop_probe *p, struct ctop_netns *ns, struct ctop_err *e)
{
	struct ctop_ct_cpu_stat *cpus = calloc(CTOP_MAX_CPUS, sizeof(*cpus));
	uint32_t *drops = calloc((size_t)p->ncpus, sizeof(*drops));
	int n = 0, err = -ENOMEM;

	if (!cpus || !drops) {
		ctop_err_set(e, ENOMEM, "seed", "out of memory");
		goto out;
	}
	err = ctop_netns_cpu_stats(ns, cpus, CTOP_MAX_CPUS, &n, e);
	if (err)
		goto out;
	for (int i = 0; i < n; i++)
		if (cpus[i].cpu < (uint32_t)p->ncpus)
			drops[cpus[i].cpu] = cpus[i].drop;
	err = ctop_probe_seed_drops(p, ctop_netns_inum(ns), drops, p->ncpus, e);
out:
	free(cpus);
	free(drops);
	return err;
}

int ctop_probe_test_run_nf(struct ctop_probe *p, const void *pkt, uint32_t len, uint8_t pf, uint8_t hook,
			   uint32_t *retval, struct ctop_err *e)
{
	/* struct nf_hook_state begins with u8 hook, u8 pf: the kernel zero-fills
	 * the rest (bpf_ctx_init) and checks these two */
	uint8_t state[2] = { hook, pf };
	DECLARE_LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = len, .ctx_in = state,
			    .ctx_size_in = sizeof(state));
	int err = bpf_prog_test_run_opts(bpf_program__fd(p->skel->progs.ctop_nf_confirm), &opts);

	if (err)
		return ctop_err_set(e, err, "test-run", "BPF_PROG_TEST_RUN refused the packet: %s", strerror(-err));
	*retval = opts.retval;
	return 0;
}

/* ---- map reads ------------------------------------------------------------------- */

/*
 * The per-port counters (bpf/ctop.h) come in families: a per-CPU hash whose
 * value is u64 counters only (struct ctop_counts, struct ctop_port_events),
 * optionally with per-CPU direct-mapped slots of {key, value} in front of it
 * (struct ctop_port_slot, struct ctop_port_event_slot). A key's counters live
 * in its slot on the CPUs where it owns one and in the hash on the others; the
 * reader adds them all up: one record per key, laid out as a slot is ({8-byte key, value}, the
 * layout of struct ctop_port_rec and struct ctop_event_rec).
 */
_Static_assert(sizeof(struct ctop_port_key) == sizeof(__u64), "a slot's key is struct ctop_port_key's 8 bytes");
_Static_assert(offsetof(struct ctop_port_rec, counts) == sizeof(__u64) &&
		       sizeof(struct ctop_port_rec) == sizeof(struct ctop_port_slot) &&
		       sizeof(struct ctop_counts) == (CTOP_ROLE_COUNT + 1) * sizeof(__u64),
	       "port records are slots, of u64 counters");
_Static_assert(offsetof(struct ctop_event_rec, events) == sizeof(__u64) &&
		       sizeof(struct ctop_event_rec) == sizeof(struct ctop_port_event_slot) &&
		       sizeof(struct ctop_port_events) % sizeof(__u64) == 0,
	       "event records are {key, u64 counters}");

static int key_cmp(const void *x, const void *y)
{
	return memcmp(x, y, sizeof(struct ctop_port_key));
}

static void add_u64s(void *to, const void *from, size_t n)
{
	uint64_t *t = to;
	const uint64_t *f = from;

	/* u64 sums wrap: per-CPU "negative" entries add up to the live count */
	for (size_t i = 0; i < n; i++)
		t[i] += f[i];
}

/* hash (hash_cap entries) and slots (slot_cap per-CPU entries, or NULL) of
 * values of value_sz bytes into *out, malloc'ed; *hash_n: the keys found in
 * the hash alone; *what names the map that failed. */
static int read_port_family(const struct ctop_probe *p, const struct bpf_map *hash, uint32_t hash_cap,
			    const struct bpf_map *slots, uint32_t slot_cap, size_t value_sz, void **out, size_t *n,
			    size_t *hash_n, const char **what)
{
	const size_t rec_sz = sizeof(__u64) + value_sz, words = value_sz / sizeof(__u64), ncpus = (size_t)p->ncpus;
	size_t got = 0, nslots = 0, nrec = 0;
	unsigned char *keys = NULL, *vals = NULL, *slot_vals = NULL, *recs = NULL;
	uint32_t *idx = NULL;
	int err;

	*what = bpf_map__name(hash);
	err = ctop_map_read(bpf_map__fd(hash), sizeof(__u64), value_sz * ncpus, hash_cap, (void **)&keys, (void **)&vals,
			    &got);
	*hash_n = got;
	if (!err && slots) {
		*what = bpf_map__name(slots);
		err = ctop_map_read(bpf_map__fd(slots), sizeof(*idx), rec_sz * ncpus, slot_cap, (void **)&idx,
				    (void **)&slot_vals, &nslots);
	}
	if (!err) {
		recs = calloc(got + nslots * ncpus + 1, rec_sz);
		err = recs ? 0 : -ENOMEM;
	}
	for (size_t i = 0; !err && i < got; i++, nrec++) {
		memcpy(recs + nrec * rec_sz, keys + i * sizeof(__u64), sizeof(__u64));
		for (size_t cpu = 0; cpu < ncpus; cpu++)
			add_u64s(recs + nrec * rec_sz + sizeof(__u64), vals + (i * ncpus + cpu) * value_sz, words);
	}
	for (size_t i = 0; !err && i < nslots * ncpus; i++) {
		const unsigned char *sl = slot_vals + i * rec_sz;
		__u64 key;

		memcpy(&key, sl, sizeof(key));
		if (key) /* 0: a free slot (family is never 0) */
			memcpy(recs + nrec++ * rec_sz, sl, rec_sz);
	}
	if (!err) {
		qsort(recs, nrec, rec_sz, key_cmp);
		got = 0;
		for (size_t i = 0; i < nrec; i++) {
			if (got && !key_cmp(recs + (got - 1) * rec_sz, recs + i * rec_sz))
				add_u64s(recs + (got - 1) * rec_sz + sizeof(__u64), recs + i * rec_sz + sizeof(__u64), words);
			else
				memmove(recs + got++ * rec_sz, recs + i * rec_sz, rec_sz);
		}
		*out = recs;
		*n = got;
		recs = NULL;
	}
	free(keys);
	free(vals);
	free(idx);
	free(slot_vals);
	free(recs);
	return err;
}

int ctop_probe_read_ports(struct ctop_probe *p, struct ctop_port_rec **out, size_t *n, struct ctop_err *e)
{
	const char *what;
	size_t hash_n = 0;
	int err = read_port_family(p, p->skel->maps.port_counts, p->max_ports, p->skel->maps.port_slots, CTOP_PORT_SLOTS,
				   sizeof(struct ctop_counts), (void **)out, n, &hash_n, &what);

	if (err)
		return ctop_err_set(e, err, "read", "cannot read the map %s: %s", what, strerror(-err));
	p->port_hash_entries = (uint32_t)hash_n;
	return 0;
}

/*
 * Whether the drop map can be left unread: the programs count every drop in
 * CTOP_TOTAL_DROPS first and then in exactly one of the drop map,
 * DROP_UNPARSED or DROP_TUPLE_OVERFLOW, so the map's counts add up to at most
 * `expected`, and to exactly that once no event is in flight. Counts only
 * grow: if `expected` equals what was handed over so far, nothing moved. An
 * event in flight during a read is picked up by the first read after it
 * lands (the sums then differ), never lost.
 */
static int drop_map_unchanged(const struct ctop_probe *p, const uint64_t t[CTOP_TOTAL_COUNT])
{
	uint64_t expected = t[CTOP_TOTAL_DROPS] - t[CTOP_TOTAL_DROP_UNPARSED] - t[CTOP_TOTAL_DROP_TUPLE_OVERFLOW];

	return expected == p->drop_tuple_sum;
}

/* Run ctop_collect_moved over the drop map: every tuple that moved since the
 * last run, with its growth, copied from moved_out into buf. */
static int read_moved_drops(struct ctop_probe *p, struct ctop_tuple_moved *buf, size_t *n, struct ctop_err *e)
{
	/* the program ignores its packet, but a test run needs one: the
	 * smallest IPv4 header, at LOCAL_OUT (which takes no Ethernet frame) */
	static const uint8_t ip4[20] = { 0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17 };
	/* the function tiers' tc collector takes an Ethernet frame (type IPv4) */
	static const uint8_t eth_ip4[34] = { [12] = 0x08, [13] = 0x00, [14] = 0x45, [17] = 20, [22] = 64, [23] = 17 };
	uint8_t state[2] = { 3 /* NF_INET_LOCAL_OUT */, 2 /* NFPROTO_IPV4 */ };
	DECLARE_LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = ip4, .data_size_in = sizeof(ip4), .ctx_in = state,
			    .ctx_size_in = sizeof(state));
	DECLARE_LIBBPF_OPTS(bpf_test_run_opts, tc_opts, .data_in = eth_ip4, .data_size_in = sizeof(eth_ip4));
	int err;

	if (p->tier == CTOP_TIER_NETFILTER)
		err = bpf_prog_test_run_opts(bpf_program__fd(p->skel->progs.ctop_collect_moved), &opts);
	else
		err = bpf_prog_test_run_opts(bpf_program__fd(p->skel->progs.ctop_collect_moved_tc_drops), &tc_opts);
	if (err)
		return ctop_err_set(e, err, "read", "cannot run the per-tuple collector on the drop map: %s", strerror(errno));
	*n = p->skel->bss->collect_n;
	memcpy(buf, p->moved_out, *n * sizeof(*buf));
	for (size_t i = 0; i < *n; i++)
		p->drop_tuple_sum += buf[i].grew;
	/* moved_out holds as many records as the drop map has entries, so it
	 * cannot fill up; if it did, the rest waits for the next read */
	return 0;
}

int ctop_probe_read_tuple_deltas(struct ctop_probe *p, const struct ctop_tuple_rec **out, size_t *n,
				 struct ctop_err *e)
{
	size_t cap[2] = { p->max_tuples, p->max_drop_tuples }, got[2] = { 0, 0 };
	uint64_t totals[CTOP_TOTAL_COUNT];
	int err;

	if (!p->moved) {
		size_t len = cap[1] * sizeof(struct ctop_tuple_moved);
		void *m;

		m = mmap(NULL, len, PROT_READ, MAP_SHARED, bpf_map__fd(p->skel->maps.moved_out), 0);
		if (m == MAP_FAILED)
			return ctop_err_set(e, errno, "read", "cannot map the moved-tuple buffer: %s", strerror(errno));
		p->moved_out = m;
		p->moved_out_len = len;
		p->moved_buf[0] = malloc(cap[0] * sizeof(*p->moved_buf[0]));
		p->moved_buf[1] = malloc(cap[1] * sizeof(*p->moved_buf[1]));
		p->moved = malloc((cap[0] + cap[1]) * sizeof(*p->moved));
		if (!p->moved_buf[0] || !p->moved_buf[1] || !p->moved) {
			free(p->moved);
			p->moved = NULL;
			return ctop_err_set(e, ENOMEM, "read", "out of memory for the per-tuple window");
		}
	}
	if (ctop_tuple_ring_moved(p->ring))
		ctop_tuple_ring_read(p->ring, p->moved_buf[0], &got[0]);
	/* if the totals cannot be read, read the drop map anyway */
	if (ctop_probe_read_totals(p, totals, NULL) != 0 || !drop_map_unchanged(p, totals)) {
		if (read_moved_drops(p, p->moved_buf[1], &got[1], e))
			return -1;
	}
	err = ctop_tuple_join(p->moved_buf[0], got[0], p->moved_buf[1], got[1], p->moved, n);
	if (err)
		return ctop_err_set(e, err, "read", "out of memory joining the per-tuple windows");
	*out = p->moved;
	return 0;
}

int ctop_probe_read_totals(struct ctop_probe *p, uint64_t out[CTOP_TOTAL_COUNT], struct ctop_err *e)
{
	uint64_t *vals = calloc((size_t)p->ncpus, sizeof(uint64_t));
	int fd = bpf_map__fd(p->skel->maps.totals);

	if (!vals)
		return ctop_err_set(e, ENOMEM, "read", "out of memory");
	for (uint32_t i = 0; i < CTOP_TOTAL_COUNT; i++) {
		out[i] = 0;
		if (bpf_map_lookup_elem(fd, &i, vals)) {
			int err = -errno;

			free(vals);
			return ctop_err_set(e, err, "read", "cannot read the totals map: %s", strerror(-err));
		}
		for (int cpu = 0; cpu < p->ncpus; cpu++)
			out[i] += vals[cpu];
	}
	free(vals);
	/* the rings' side, which the reader keeps (struct ctop_tuple_slot);
	 * the inserts total is the positions the programs claimed */
	out[CTOP_TOTAL_INSERTS] = ctop_tuple_ring_claimed(p->ring);
	out[CTOP_TOTAL_TUPLE_OVERFLOW] = ctop_tuple_ring_lost(p->ring);
	out[CTOP_TOTAL_TUPLE_ENTRIES] = ctop_tuple_ring_used(p->ring);
	return 0;
}

/*
 * Each port's live entries, `entries`: its inserts (port_counts, all roles)
 * minus its deletions (port_events). The programs count an insert once, in
 * port_counts, not a second time here. Both lists are sorted by key; a port
 * with inserts and no event gets a record. The events are read first: an
 * entry inserted and deleted between the two reads is then counted live
 * until the next read, never the reverse (a count below zero).
 */
static int add_live_entries(struct ctop_probe *p, struct ctop_event_rec **ev, size_t *nev, const char **what)
{
	struct ctop_port_rec *ports = NULL;
	struct ctop_event_rec *out;
	size_t nports = 0, hash_n = 0, i = 0, j = 0, n = 0;
	int err = read_port_family(p, p->skel->maps.port_counts, p->max_ports, p->skel->maps.port_slots,
				   CTOP_PORT_SLOTS, sizeof(struct ctop_counts), (void **)&ports, &nports, &hash_n, what);

	if (err)
		return err;
	out = calloc(*nev + nports + 1, sizeof(*out));
	if (!out) {
		free(ports);
		return -ENOMEM;
	}
	while (i < *nev || j < nports) {
		int c = i == *nev ? 1 : j == nports ? -1 : key_cmp(&(*ev)[i].key, &ports[j].key);
		uint64_t inserts = 0;

		if (c >= 0) {
			for (int r = 0; r < CTOP_ROLE_COUNT; r++)
				inserts += ports[j].counts.inserts_by_role[r];
		}
		if (c <= 0)
			out[n] = (*ev)[i++];
		else
			out[n].key = ports[j].key;
		if (c >= 0)
			j++;
		/* u64 arithmetic: entries deleted that were inserted before the
		 * programs attached make it "negative", as the kernel's view
		 * minus ours */
		out[n].events.entries = inserts - out[n].events.deletes;
		n++;
	}
	free(ports);
	free(*ev);
	*ev = out;
	*nev = n;
	return 0;
}

int ctop_probe_read_events(struct ctop_probe *p, struct ctop_event_rec **out, size_t *n, struct ctop_err *e)
{
	/* the netfilter tier does not count these: both maps are one entry there */
	uint32_t cap = p->tier == CTOP_TIER_NETFILTER ? 1 : p->max_ports;
	uint32_t slot_cap = p->tier == CTOP_TIER_NETFILTER ? 1 : CTOP_PORT_SLOTS;
	const char *what;
	size_t hash_n = 0;
	int err = read_port_family(p, p->skel->maps.port_events, cap, p->skel->maps.port_event_slots, slot_cap,
				   sizeof(struct ctop_port_events), (void **)out, n, &hash_n, &what);

	if (!err && p->tier != CTOP_TIER_NETFILTER) {
		err = add_live_entries(p, out, n, &what);
		if (err) {
			free(*out);
			*out = NULL;
			*n = 0;
		}
	}
	if (err)
		return ctop_err_set(e, err, "read", "cannot read the map %s: %s", what, strerror(-err));
	return 0;
}

int ctop_probe_prog_stats(struct ctop_probe *p, struct ctop_prog_stat *out, int max, int *n)
{
	struct bpf_program *prog;
	int i = 0;

	bpf_object__for_each_program(prog, p->skel->obj) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);
		int fd = bpf_program__fd(prog);

		if (i >= max || fd < 0)
			continue;
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fd, &info, &len))
			return -errno;
		snprintf(out[i].name, sizeof(out[i].name), "%s", bpf_program__name(prog));
		out[i].run_cnt = info.run_cnt;
		out[i].run_time_ns = info.run_time_ns;
		out[i].recursion_misses = info.recursion_misses;
		i++;
	}
	*n = i;
	return 0;
}
