// SPDX-License-Identifier: GPL-2.0
/*
 * Loads bpf/walk.bpf.c and drives it: catch one confirmed entry, find the
 * conntrack hash from it (or from kallsyms), then walk every bucket in
 * bounded runs. See the BPF file for the kernel facts it relies on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include "ctop_core.h"
#include "walk.h"
#include "walk.skel.h"

_Static_assert(CTOP_WALK_HIST == sizeof(((struct ctop_walk_result *)0)->hist) / sizeof(uint64_t),
	       "ctop_walk_result.hist matches CTOP_WALK_HIST");

struct ctop_walk {
	struct ctop_walk_bpf *skel;
	/* the datagram ctop sent to make an entry (ctop_walk_capture with a
	 * namespace): a ctnetlink handle in that namespace and the entry's
	 * source port, to delete exactly that entry again */
	struct nfct_handle *poke_h;
	uint16_t poke_sport;
};

int ctop_walk_open(const struct ctop_walk_opts *o, struct ctop_walk **out, struct ctop_err *e)
{
	struct ctop_walk *w;
	int err;

	ctop_libbpf_log_begin();
	w = calloc(1, sizeof(*w));
	if (!w)
		return ctop_err_set(e, ENOMEM, "open", "out of memory");
	w->skel = ctop_walk_bpf__open();
	if (!w->skel) {
		err = -errno;
		free(w);
		return ctop_err_set(e, err, "open", "cannot open the hash-walk BPF object: %s", strerror(-err));
	}
	if (o && o->max_groups)
		bpf_map__set_max_entries(w->skel->maps.census_groups, o->max_groups);
	if (o && o->max_addrs)
		bpf_map__set_max_entries(w->skel->maps.census_addrs, o->max_addrs);
	err = ctop_walk_bpf__load(w->skel);
	if (err) {
		ctop_walk_bpf__destroy(w->skel);
		free(w);
		return ctop_err_set(e, err, "load", "the verifier refused them: %s", strerror(-err));
	}
	*out = w;
	return 0;
}

void ctop_walk_destroy(struct ctop_walk *w)
{
	if (!w)
		return;
	if (w->poke_h)
		nfct_close(w->poke_h);
	ctop_walk_bpf__destroy(w->skel);
	free(w);
}

struct poke_job {
	const char *path;
	int err;
	struct nfct_handle *h;
	uint16_t sport;
};

/* One UDP datagram to 127.0.0.1:9 from inside the namespace: a conntrack
 * entry there (if conntrack is active in it), confirmed at POST_ROUTING,
 * seen by net_dev_queue on lo right after. */
static void *poke_in_netns(void *arg)
{
	struct poke_job *j = arg;
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(9) };
	int fd = open(j->path, O_RDONLY | O_CLOEXEC), s;

	if (fd < 0 || setns(fd, CLONE_NEWNET)) {
		j->err = errno;
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	close(fd);
	/* a ctnetlink handle opened here stays in this namespace: it deletes
	 * the entry later, by its exact tuple (a hash lookup; a flush would
	 * walk the whole global table) */
	j->h = nfct_open(CONNTRACK, 0);
	if (!j->h) {
		j->err = errno;
		return NULL;
	}
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s >= 0) {
		struct sockaddr_in src = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t len = sizeof(src);

		if (bind(s, (struct sockaddr *)&src, sizeof(src)) || getsockname(s, (struct sockaddr *)&src, &len) ||
		    sendto(s, "c", 1, 0, (struct sockaddr *)&dst, sizeof(dst)) < 0)
			j->err = errno;
		j->sport = ntohs(src.sin_port);
		close(s);
	} else {
		j->err = errno;
	}
	return NULL;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int ctop_walk_capture(struct ctop_walk *w, const char *netns_path, uint32_t wait_ms, uint64_t *node,
		      struct ctop_err *e)
{
	struct bpf_link *link;
	double end;
	int err = 0;

	w->skel->bss->captured_node = 0;
	link = bpf_program__attach(w->skel->progs.ctop_walk_catch);
	if (!link)
		return ctop_err_set(e, errno, "attach", "cannot attach tp_btf/net_dev_queue: %s", strerror(errno));
	if (netns_path) {
		struct poke_job j = { .path = netns_path };
		pthread_t t;

		err = pthread_create(&t, NULL, poke_in_netns, &j);
		if (!err) {
			pthread_join(t, NULL);
			err = j.err;
		}
		if (w->poke_h)
			nfct_close(w->poke_h);
		w->poke_h = j.h;
		w->poke_sport = j.sport;
		if (err) {
			bpf_link__destroy(link);
			return ctop_err_set(e, err, "netns", "cannot send the locating packet in %s: %s", netns_path,
					    strerror(err));
		}
	}
	end = now_ms() + wait_ms;
	while (!__atomic_load_n(&w->skel->bss->captured_node, __ATOMIC_ACQUIRE) && now_ms() < end) {
		struct timespec ms = { .tv_nsec = 1000000 };

		nanosleep(&ms, NULL);
	}
	bpf_link__destroy(link);
	*node = w->skel->bss->captured_node;
	return 0;
}

int ctop_walk_forget_poke(struct ctop_walk *w, struct ctop_err *e)
{
	struct nf_conntrack *ct;
	int err = 0;

	if (!w->poke_h)
		return 0;
	ct = nfct_new();
	if (!ct)
		return ctop_err_set(e, ENOMEM, "ctnetlink", "out of memory");
	nfct_set_attr_u8(ct, ATTR_L3PROTO, AF_INET);
	nfct_set_attr_u32(ct, ATTR_IPV4_SRC, htonl(INADDR_LOOPBACK));
	nfct_set_attr_u32(ct, ATTR_IPV4_DST, htonl(INADDR_LOOPBACK));
	nfct_set_attr_u8(ct, ATTR_L4PROTO, IPPROTO_UDP);
	nfct_set_attr_u16(ct, ATTR_PORT_SRC, htons(w->poke_sport));
	nfct_set_attr_u16(ct, ATTR_PORT_DST, htons(9));
	if (nfct_query(w->poke_h, NFCT_Q_DESTROY, ct) < 0)
		err = ctop_err_set(e, errno, "ctnetlink", "cannot delete ctop's own locating entry: %s", strerror(errno));
	nfct_destroy(ct);
	nfct_close(w->poke_h);
	w->poke_h = NULL;
	return err;
}

static int run(struct bpf_program *p, const char *what, struct ctop_err *e)
{
	DECLARE_LIBBPF_OPTS(bpf_test_run_opts, opts);
	int err = bpf_prog_test_run_opts(bpf_program__fd(p), &opts);

	if (err)
		return ctop_err_set(e, err, "test-run", "BPF_PROG_TEST_RUN of %s failed: %s", what, strerror(-err));
	return 0;
}

int ctop_walk_locate(struct ctop_walk *w, uint64_t in, uint32_t mode, uint64_t *base, uint32_t *bucket,
		     struct ctop_err *e)
{
	static const char *why[] = {
		[CTOP_LOCATE_READ] = "a pointer on the way could not be read",
		[CTOP_LOCATE_NO_MARKER] = "the chain did not end in a nulls marker",
		[CTOP_LOCATE_NO_HEAD] = "no bucket head was found going back along pprev",
	};
	int err;

	w->skel->bss->locate_in = in;
	w->skel->bss->locate_mode = mode;
	err = run(w->skel->progs.ctop_walk_find, "ctop_walk_find", e);
	if (err)
		return err;
	if (w->skel->bss->locate_err) {
		int k = w->skel->bss->locate_err;

		return ctop_err_set(e, EIO, "locate", "cannot find the conntrack hash: %s",
				    k > 0 && k <= CTOP_LOCATE_NO_HEAD ? why[k] : "unknown error");
	}
	*base = w->skel->bss->located_base;
	*bucket = w->skel->bss->located_bucket;
	return 0;
}

int ctop_walk_chains(struct ctop_walk *w, uint64_t base, uint32_t size, uint32_t per_run, int census, int addrs,
		     struct ctop_walk_result *r, struct ctop_err *e)
{
	struct ctop_walk_bpf__bss *b = w->skel->bss;
	int err;

	if (!per_run)
		per_run = 4096;
	memset(b->walk_hist, 0, sizeof(b->walk_hist));
	b->walk_nodes = 0;
	b->walk_longest = b->walk_rewalked = b->walk_inconsistent = b->walk_done = 0;
	b->census_enabled = census ? 1 : 0;
	b->census_addrs_enabled = addrs ? 1 : 0;
	b->census_entries = 0;
	b->last_net = 0;
	b->walk_base = base;
	b->walk_size = size;
	memset(r, 0, sizeof(*r));
	for (uint64_t start = 0; start < size; start += per_run) {
		b->walk_start = (uint32_t)start;
		b->walk_count = per_run;
		double t0 = now_ms();
		err = run(w->skel->progs.ctop_walk_chain, "ctop_walk_chain", e);
		if (err)
			return err;
		uint64_t ns = (uint64_t)((now_ms() - t0) * 1e6);
		if (ns > r->max_run_ns)
			r->max_run_ns = ns;
		r->runs++;
		/* let softirqs and other tasks in between runs */
		sched_yield();
	}
	r->buckets = b->walk_done;
	r->census_entries = b->census_entries;
	r->nf_conn_bytes = b->nf_conn_bytes;
	r->nodes = b->walk_nodes;
	r->longest = b->walk_longest;
	r->rewalked = b->walk_rewalked;
	r->inconsistent = b->walk_inconsistent;
	memcpy(r->hist, b->walk_hist, sizeof(r->hist));
	return 0;
}

/* ---- reading the census maps ------------------------------------------------ */

/* Every (key, value) of a hash map, in batches (kernel >= 5.6). */
static struct ctop_census *census_for(struct ctop_walk_census **arr, size_t *n, size_t *cap, uint32_t netns)
{
	for (size_t i = 0; i < *n; i++)
		if ((*arr)[i].netns == netns)
			return (*arr)[i].c;
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 8;
		struct ctop_walk_census *na = realloc(*arr, nc * sizeof(*na));

		if (!na)
			return NULL;
		*arr = na;
		*cap = nc;
	}
	(*arr)[*n].netns = netns;
	(*arr)[*n].c = calloc(1, sizeof(struct ctop_census));
	return (*arr)[(*n)++].c;
}

static int grow(void **p, size_t *cap, size_t need, size_t sz)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 64;
	while (nc < need)
		nc *= 2;
	void *np = realloc(*p, nc * sz);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = nc;
	return 0;
}

static int group_desc(const void *x, const void *y)
{
	const struct ctop_census_group *a = x, *b = y;

	if (a->entries != b->entries)
		return a->entries < b->entries ? 1 : -1;
	if (a->family != b->family)
		return a->family - b->family;
	if (a->l4proto != b->l4proto)
		return a->l4proto - b->l4proto;
	if (a->port != b->port)
		return a->port - b->port;
	return a->state - b->state;
}

struct caps {
	size_t groups, srcs, dsts;
};

int ctop_walk_read_census(struct ctop_walk *w, struct ctop_walk_census **out, size_t *n, struct ctop_err *e)
{
	struct ctop_walk_census *arr = NULL;
	struct caps *caps = NULL;
	size_t nn = 0, cap = 0, ncaps = 0, cnt = 0;
	void *keys = NULL, *vals = NULL;
	int err;

#define CAPS_FOR(i)                                                                              \
	do {                                                                                     \
		if ((i) >= ncaps) {                                                              \
			struct caps *nc = realloc(caps, (cap ? cap : 8) * sizeof(*nc));          \
			if (!nc) {                                                               \
				err = -ENOMEM;                                                   \
				goto fail;                                                       \
			}                                                                        \
			memset(nc + ncaps, 0, ((cap ? cap : 8) - ncaps) * sizeof(*nc));          \
			caps = nc;                                                               \
			ncaps = cap ? cap : 8;                                                   \
		}                                                                                \
	} while (0)

	err = ctop_map_read(bpf_map__fd(w->skel->maps.census_groups), sizeof(struct ctop_census_key),
		       sizeof(struct ctop_census_val), bpf_map__max_entries(w->skel->maps.census_groups), &keys, &vals,
		       &cnt);
	if (err)
		goto fail;
	for (size_t i = 0; i < cnt; i++) {
		struct ctop_census_key *k = (struct ctop_census_key *)keys + i;
		struct ctop_census_val *v = (struct ctop_census_val *)vals + i;
		struct ctop_census *c = census_for(&arr, &nn, &cap, k->netns);
		size_t idx = 0;

		if (!c) {
			err = -ENOMEM;
			goto fail;
		}
		while (arr[idx].c != c)
			idx++;
		CAPS_FOR(idx);
		if (grow((void **)&c->groups, &caps[idx].groups, c->ngroups + 1, sizeof(*c->groups))) {
			err = -ENOMEM;
			goto fail;
		}
		c->groups[c->ngroups++] = (struct ctop_census_group){
			.family = k->family, .l4proto = k->proto, .state = k->state, .port = k->port,
			.entries = (uint32_t)v->entries, .assured = (uint32_t)v->assured, .unreplied = (uint32_t)v->unreplied,
		};
		c->entries += v->entries;
		c->assured += v->assured;
		c->unreplied += v->unreplied;
	}
	free(keys);
	free(vals);
	keys = vals = NULL;
	err = ctop_map_read(bpf_map__fd(w->skel->maps.census_addrs), sizeof(struct ctop_census_addr_key), sizeof(uint64_t),
		       bpf_map__max_entries(w->skel->maps.census_addrs), &keys, &vals, &cnt);
	if (err)
		goto fail;
	for (size_t i = 0; i < cnt; i++) {
		struct ctop_census_addr_key *k = (struct ctop_census_addr_key *)keys + i;
		struct ctop_census *c = census_for(&arr, &nn, &cap, k->netns);
		size_t idx = 0;
		struct ctop_census_addr a = { .family = k->family, .entries = (uint32_t)((uint64_t *)vals)[i] };

		if (!c) {
			err = -ENOMEM;
			goto fail;
		}
		while (arr[idx].c != c)
			idx++;
		CAPS_FOR(idx);
		memcpy(a.addr, k->addr, 16);
		if (k->dir == 0) {
			if (grow((void **)&c->srcs, &caps[idx].srcs, c->nsrcs + 1, sizeof(a))) {
				err = -ENOMEM;
				goto fail;
			}
			c->srcs[c->nsrcs++] = a;
		} else {
			if (grow((void **)&c->dsts, &caps[idx].dsts, c->ndsts + 1, sizeof(a))) {
				err = -ENOMEM;
				goto fail;
			}
			c->dsts[c->ndsts++] = a;
		}
	}
	free(keys);
	free(vals);
	keys = vals = NULL;
	err = ctop_map_read(bpf_map__fd(w->skel->maps.census_overflow), sizeof(struct ctop_census_ovf_key), sizeof(uint64_t),
		       bpf_map__max_entries(w->skel->maps.census_overflow), &keys, &vals, &cnt);
	if (err)
		goto fail;
	for (size_t i = 0; i < cnt; i++) {
		struct ctop_census_ovf_key *k = (struct ctop_census_ovf_key *)keys + i;
		struct ctop_census *c = census_for(&arr, &nn, &cap, k->netns);
		uint64_t v = ((uint64_t *)vals)[i];

		if (!c) {
			err = -ENOMEM;
			goto fail;
		}
		if (k->what == 0)
			c->src_overflow += v;
		else if (k->what == 1)
			c->dst_overflow += v;
		else if (k->what == 3)
			c->remain_overflow += v;
		else
			c->group_overflow += v;
	}
	free(keys);
	free(vals);
	keys = vals = NULL;
	_Static_assert(CTOP_REMAIN_SLOTS == CTOP_CENSUS_REMAIN_SLOTS, "walk.h and ctop_core.h slot counts differ");
	err = ctop_map_read(bpf_map__fd(w->skel->maps.census_remain), sizeof(struct ctop_census_remain_key),
		       sizeof(struct ctop_census_remain_val), bpf_map__max_entries(w->skel->maps.census_remain), &keys,
		       &vals, &cnt);
	if (err)
		goto fail;
	for (size_t i = 0; i < cnt; i++) {
		struct ctop_census_remain_key *k = (struct ctop_census_remain_key *)keys + i;
		struct ctop_census_remain_val *v = (struct ctop_census_remain_val *)vals + i;
		struct ctop_census *c = census_for(&arr, &nn, &cap, k->netns);

		if (!c) {
			err = -ENOMEM;
			goto fail;
		}
		if (k->state >= CTOP_TCP_STATES)
			continue;
		for (int j = 0; j < CTOP_REMAIN_SLOTS; j++)
			c->tcp_remain[k->state][j] += v->slot[j];
	}
	for (size_t i = 0; i < nn; i++) {
		struct ctop_census *c = arr[i].c;

		/* the walk read timeouts only where it knew HZ */
		c->remain_valid = w->skel->bss->census_remain_ok != 0;
		qsort(c->groups, c->ngroups, sizeof(*c->groups), group_desc);
		qsort(c->srcs, c->nsrcs, sizeof(*c->srcs), ctop_census_addr_cmp_desc);
		qsort(c->dsts, c->ndsts, sizeof(*c->dsts), ctop_census_addr_cmp_desc);
	}
	free(keys);
	free(vals);
	free(caps);
	*out = arr;
	*n = nn;
	return 0;
fail:
	free(keys);
	free(vals);
	free(caps);
	ctop_walk_census_free(arr, nn);
	return ctop_err_set(e, err, "read", "cannot read the census maps: %s", strerror(-err));
#undef CAPS_FOR
}

void ctop_walk_census_free(struct ctop_walk_census *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ctop_census_free(a[i].c);
	free(a);
}
