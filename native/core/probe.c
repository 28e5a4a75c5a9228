// SPDX-License-Identifier: GPL-2.0
/* Open, load and read ctop's BPF object through its libbpf skeleton. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <bpf/btf.h>
#include "ctop_core.h"
#include "ctop.skel.h"

/* Debian 12's libbpf 1.1 and uapi headers predate BPF netfilter programs
 * (kernel 6.4): their numbers, from include/uapi/linux/bpf.h. */
#define CTOP_BPF_PROG_TYPE_NETFILTER 32
#define CTOP_BPF_NETFILTER 45

#define CTOP_MAX_FUNC_LINKS 16

struct ctop_probe {
	struct ctop_bpf *skel;
	struct bpf_link *drop_link;
	/* function tiers: one link per program, attached at load */
	struct bpf_link *func_links[CTOP_MAX_FUNC_LINKS];
	int nfunc_links;
	int tier;
	int ncpus;
	uint32_t max_ports, max_tuples, max_drop_tuples;
};

/* ---- libbpf log capture --------------------------------------------------- */
static char log_buf[16384];
static size_t log_len;

static int capture_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	if (log_len < sizeof(log_buf) - 1) {
		int n = vsnprintf(log_buf + log_len, sizeof(log_buf) - log_len, fmt, ap);

		if (n > 0)
			log_len += (size_t)n < sizeof(log_buf) - log_len ? (size_t)n : sizeof(log_buf) - log_len - 1;
	}
	return 0;
}

const char *ctop_libbpf_log(void) { return log_buf; }

void ctop_libbpf_log_clear(void)
{
	log_len = 0;
	log_buf[0] = 0;
}

int ctop_err_set(struct ctop_err *e, int err, const char *step, const char *fmt, ...)
{
	va_list ap;

	if (err < 0)
		err = -err;
	if (e) {
		e->err = err;
		snprintf(e->step, sizeof(e->step), "%s", step);
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	}
	return -err;
}

/* ---- tiers ------------------------------------------------------------------- */
const char *ctop_tier_name(int tier)
{
	switch (tier) {
	case CTOP_TIER_FENTRY: return "fentry";
	case CTOP_TIER_KPROBE: return "kprobe";
	case CTOP_TIER_NETFILTER: return "netfilter";
	}
	return "unknown";
}

/* Which tier a program belongs to, from its name (bpf/ctop.bpf.c). */
static int prog_tier(const struct bpf_program *prog)
{
	const char *name = bpf_program__name(prog);

	if (strncmp(name, "ctop_fe_", 8) == 0)
		return CTOP_TIER_FENTRY;
	if (strncmp(name, "ctop_kp_", 8) == 0)
		return CTOP_TIER_KPROBE;
	return CTOP_TIER_NETFILTER;
}

/* Attach every program of a function tier. Any refusal refuses the tier:
 * counts from a partial set would not add up. */
static int attach_funcs(struct ctop_probe *p, struct ctop_err *e)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, p->skel->obj) {
		struct bpf_link *l;

		if (!bpf_program__autoload(prog))
			continue;
		if (p->nfunc_links >= CTOP_MAX_FUNC_LINKS)
			return ctop_err_set(e, E2BIG, "attach", "too many programs in the %s tier", ctop_tier_name(p->tier));
		l = bpf_program__attach(prog);
		if (!l) {
			int err = -errno;

			return ctop_err_set(e, err, "attach", "the kernel refused to attach %s (%s): %s",
					    bpf_program__name(prog), bpf_program__section_name(prog), strerror(-err));
		}
		p->func_links[p->nfunc_links++] = l;
	}
	return 0;
}

/* ---- open / load / attach ---------------------------------------------------- */
int ctop_probe_open_load(const struct ctop_probe_opts *o, struct ctop_probe **out, struct ctop_err *e)
{
	struct ctop_probe *p;
	int err;

	libbpf_set_print(capture_print);
	ctop_libbpf_log_clear();
	p = calloc(1, sizeof(*p));
	if (!p)
		return ctop_err_set(e, ENOMEM, "open", "out of memory");
	p->ncpus = libbpf_num_possible_cpus();
	if (p->ncpus <= 0) {
		free(p);
		return ctop_err_set(e, EINVAL, "open", "cannot read the number of possible CPUs");
	}
	p->skel = ctop_bpf__open();
	if (!p->skel) {
		err = -errno;
		free(p);
		return ctop_err_set(e, err, "open", "cannot open the BPF object: %s", strerror(-err));
	}
	p->max_ports = o->max_ports ? o->max_ports : 8192;
	p->max_tuples = o->max_tuples ? o->max_tuples : 16384;
	p->max_drop_tuples = o->max_drop_tuples ? o->max_drop_tuples : 4096;
	bpf_map__set_max_entries(p->skel->maps.port_counts, p->max_ports);
	bpf_map__set_max_entries(p->skel->maps.tuple_inserts, p->max_tuples);
	bpf_map__set_max_entries(p->skel->maps.tuple_drops, p->max_drop_tuples);
	p->skel->rodata->target_netns = o->target_netns;
	p->tier = o->tier;
	if (o->tier != CTOP_TIER_FENTRY && o->tier != CTOP_TIER_KPROBE && o->tier != CTOP_TIER_NETFILTER) {
		ctop_bpf__destroy(p->skel);
		free(p);
		return ctop_err_set(e, EINVAL, "open", "unknown probe tier %d", o->tier);
	}
	{
		struct bpf_program *prog;

		bpf_object__for_each_program(prog, p->skel->obj)
			bpf_program__set_autoload(prog, prog_tier(prog) == o->tier);
	}
	if (o->tier == CTOP_TIER_NETFILTER) {
		/* the function tiers' maps are not used: keep them minimal */
		bpf_map__set_max_entries(p->skel->maps.port_events, 1);
		bpf_map__set_max_entries(p->skel->maps.confirm_frames, 1);
		bpf_map__set_max_entries(p->skel->maps.alloc_frames, 1);
		bpf_map__set_max_entries(p->skel->maps.early_drop_frames, 1);
	} else {
		bpf_map__set_max_entries(p->skel->maps.port_events, p->max_ports);
	}
	/* Only the netfilter program needs struct nf_conn's id, in vmlinux:
	 * where conntrack is a module (Debian's 6.1) the type is in module BTF. */
	if (o->tier == CTOP_TIER_NETFILTER) {
		struct btf *vmlinux = btf__load_vmlinux_btf();
		int id = vmlinux ? btf__find_by_name_kind(vmlinux, "nf_conn", BTF_KIND_STRUCT) : -ENOENT;

		btf__free(vmlinux);
		if (id <= 0) {
			ctop_bpf__destroy(p->skel);
			free(p);
			return ctop_err_set(e, ENOENT, "open", "the kernel's BTF has no struct nf_conn (conntrack not built in?)");
		}
		p->skel->rodata->nf_conn_btf_id = (uint32_t)id;
	}

	bpf_program__set_type(p->skel->progs.ctop_nf_confirm, CTOP_BPF_PROG_TYPE_NETFILTER);
	bpf_program__set_expected_attach_type(p->skel->progs.ctop_nf_confirm, CTOP_BPF_NETFILTER);

	err = ctop_bpf__load(p->skel);
	if (err) {
		ctop_bpf__destroy(p->skel);
		free(p);
		return ctop_err_set(e, err, "load", "the kernel refused to load the %s programs: %s", ctop_tier_name(o->tier),
				    strerror(-err));
	}
	if (o->tier != CTOP_TIER_NETFILTER) {
		err = attach_funcs(p, e);
		if (err) {
			ctop_probe_destroy(p);
			return err;
		}
	}
	*out = p;
	return 0;
}

void ctop_probe_destroy(struct ctop_probe *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->nfunc_links; i++)
		bpf_link__destroy(p->func_links[i]);
	bpf_link__destroy(p->drop_link);
	ctop_bpf__destroy(p->skel);
	free(p);
}

int ctop_probe_ncpus(const struct ctop_probe *p) { return p->ncpus; }

int ctop_probe_tier(const struct ctop_probe *p) { return p->tier; }

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
 * Dump a hash map into keys[] and vals[] (vals holds value_size * ncpus bytes per
 * entry for per-CPU maps). Batch lookup (kernel >= 5.6) takes one syscall per
 * few thousand entries; iterate with get_next_key where it is refused.
 */
static int dump_map(int fd, size_t key_sz, size_t val_sz, uint32_t cap, void *keys, void *vals, size_t *n)
{
	DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);
	unsigned char in_batch[64], out_batch[64];
	bool first = true;
	size_t total = 0;
	int err;

	for (;;) {
		__u32 count = cap - (uint32_t)total;

		if (count == 0)
			break;
		err = bpf_map_lookup_batch(fd, first ? NULL : in_batch, out_batch,
					   (char *)keys + total * key_sz, (char *)vals + total * val_sz,
					   &count, &opts);
		if (err && errno != ENOENT) {
			if (first && (errno == EINVAL || errno == 524 /* kernel ENOTSUPP */ || errno == EOPNOTSUPP))
				goto iterate;
			return -errno;
		}
		total += count;
		if (err) /* ENOENT: the whole map was read */
			break;
		memcpy(in_batch, out_batch, sizeof(in_batch));
		first = false;
	}
	*n = total;
	return 0;

iterate:
	total = 0;
	{
		unsigned char cur[64], next[64];
		void *prev = NULL;

		while (total < cap && bpf_map_get_next_key(fd, prev, next) == 0) {
			memcpy((char *)keys + total * key_sz, next, key_sz);
			if (bpf_map_lookup_elem(fd, next, (char *)vals + total * val_sz) == 0)
				total++;
			memcpy(cur, next, key_sz);
			prev = cur;
		}
	}
	*n = total;
	return 0;
}

int ctop_probe_read_ports(struct ctop_probe *p, struct ctop_port_rec **out, size_t *n, struct ctop_err *e)
{
	size_t cap = p->max_ports, got = 0, vsz = sizeof(struct ctop_counts) * (size_t)p->ncpus;
	struct ctop_port_key *keys = malloc(cap * sizeof(*keys));
	unsigned char *vals = malloc(cap * vsz);
	struct ctop_port_rec *recs = NULL;
	int err;

	if (!keys || !vals) {
		err = -ENOMEM;
		goto out;
	}
	err = dump_map(bpf_map__fd(p->skel->maps.port_counts), sizeof(*keys), vsz, (uint32_t)cap, keys, vals, &got);
	if (err)
		goto out;
	recs = calloc(got ? got : 1, sizeof(*recs));
	if (!recs) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < got; i++) {
		const struct ctop_counts *c = (const void *)(vals + i * vsz);

		recs[i].key = keys[i];
		for (int cpu = 0; cpu < p->ncpus; cpu++) {
			recs[i].counts.inserts += c[cpu].inserts;
			recs[i].counts.drops += c[cpu].drops;
		}
	}
	*out = recs;
	*n = got;
out:
	free(keys);
	free(vals);
	if (err)
		return ctop_err_set(e, err, "read", "cannot read the per-port map: %s", strerror(-err));
	return 0;
}

int ctop_probe_read_tuples(struct ctop_probe *p, int drops, struct ctop_tuple_rec **out, size_t *n, struct ctop_err *e)
{
	size_t cap = drops ? p->max_drop_tuples : p->max_tuples, got = 0;
	struct bpf_map *map = drops ? p->skel->maps.tuple_drops : p->skel->maps.tuple_inserts;
	struct ctop_tuple_key *keys = malloc(cap * sizeof(*keys));
	uint64_t *vals = malloc(cap * sizeof(*vals));
	struct ctop_tuple_rec *recs = NULL;
	int err;

	if (!keys || !vals) {
		err = -ENOMEM;
		goto out;
	}
	err = dump_map(bpf_map__fd(map), sizeof(*keys), sizeof(*vals), (uint32_t)cap, keys, vals, &got);
	if (err)
		goto out;
	recs = calloc(got ? got : 1, sizeof(*recs));
	if (!recs) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < got; i++) {
		recs[i].key = keys[i];
		if (drops)
			recs[i].counts.drops = vals[i];
		else
			recs[i].counts.inserts = vals[i];
	}
	*out = recs;
	*n = got;
out:
	free(keys);
	free(vals);
	if (err)
		return ctop_err_set(e, err, "read", "cannot read the per-tuple %s map: %s", drops ? "drop" : "insert",
				    strerror(-err));
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
	return 0;
}

int ctop_probe_read_events(struct ctop_probe *p, struct ctop_event_rec **out, size_t *n, struct ctop_err *e)
{
	size_t cap = p->tier == CTOP_TIER_NETFILTER ? 1 : p->max_ports, got = 0;
	size_t vsz = sizeof(struct ctop_port_events) * (size_t)p->ncpus;
	struct ctop_port_key *keys = malloc(cap * sizeof(*keys));
	unsigned char *vals = malloc(cap * vsz);
	struct ctop_event_rec *recs = NULL;
	int err;

	if (!keys || !vals) {
		err = -ENOMEM;
		goto out;
	}
	err = dump_map(bpf_map__fd(p->skel->maps.port_events), sizeof(*keys), vsz, (uint32_t)cap, keys, vals, &got);
	if (err)
		goto out;
	recs = calloc(got ? got : 1, sizeof(*recs));
	if (!recs) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < got; i++) {
		const struct ctop_port_events *c = (const void *)(vals + i * vsz);

		recs[i].key = keys[i];
		/* u64 sums wrap: per-CPU "negative" entries add up to the live count */
		for (int cpu = 0; cpu < p->ncpus; cpu++) {
			recs[i].events.entries += c[cpu].entries;
			recs[i].events.deletes += c[cpu].deletes;
			recs[i].events.early_drops += c[cpu].early_drops;
			recs[i].events.insert_failed += c[cpu].insert_failed;
			recs[i].events.clashes += c[cpu].clashes;
		}
	}
	*out = recs;
	*n = got;
out:
	free(keys);
	free(vals);
	if (err)
		return ctop_err_set(e, err, "read", "cannot read the per-port event map: %s", strerror(-err));
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
		i++;
	}
	*n = i;
	return 0;
}
