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
#include "walk_entry.skel.h"

_Static_assert(CTOP_WALK_HIST == sizeof(((struct ctop_walk_result *)0)->hist) / sizeof(uint64_t),
	       "ctop_walk_result.hist matches CTOP_WALK_HIST");

struct ctop_walk {
	struct ctop_walk_bpf *skel;
	/* the datagram ctop sent to make an entry (ctop_walk_capture with a
	 * namespace): a ctnetlink handle in that namespace and the entry's
	 * source port, to delete exactly that entry again */
	struct nfct_handle *poke_h;
	uint16_t poke_sport;
	/* a census walk ran and its counts are still in the maps */
	int census_dirty;
	/* ctop_walk_chain_direct is the one loaded (else ctop_walk_chain) */
	int direct;
	/* the own-entry object, loaded once and kept: every census makes an
	 * entry after its walk (the resize barrier, src/source/hashWalk.ts) */
	struct ctop_walk_entry_bpf *own_skel;
};

/* Opens and loads the walk object with one of its two walk programs (the
 * other is not loaded, so the verifier checks only one). */
static int walk_load(const struct ctop_walk_opts *o, int direct, struct ctop_walk_bpf **out)
{
	struct ctop_walk_bpf *skel = ctop_walk_bpf__open();
	int err;

	if (!skel)
		return -errno;
	if (o && o->max_groups)
		bpf_map__set_max_entries(skel->maps.census_groups, o->max_groups);
	if (o && o->max_addrs)
		bpf_map__set_max_entries(skel->maps.census_addrs, o->max_addrs);
	bpf_program__set_autoload(skel->progs.ctop_walk_chain_direct, direct);
	bpf_program__set_autoload(skel->progs.ctop_walk_chain, !direct);
	err = ctop_walk_bpf__load(skel);
	if (err) {
		ctop_walk_bpf__destroy(skel);
		return err;
	}
	*out = skel;
	return 0;
}

int ctop_walk_open(const struct ctop_walk_opts *o, struct ctop_walk **out, struct ctop_err *e)
{
	struct ctop_walk *w;
	int err;

	ctop_libbpf_log_begin();
	w = calloc(1, sizeof(*w));
	if (!w)
		return ctop_err_set(e, ENOMEM, "open", "out of memory");
	/* plain loads need bpf_rdonly_cast (Linux 6.2); where libbpf does not find
	 * it, or the verifier refuses the direct program, the probe-read walk */
	w->direct = !(o && o->probe_read);
	err = w->direct ? walk_load(o, 1, &w->skel) : -1;
	if (err) {
		w->direct = 0;
		err = walk_load(o, 0, &w->skel);
	}
	if (err) {
		free(w);
		return ctop_err_set(e, err, "load", "the verifier refused them: %s", strerror(-err));
	}
	w->skel->bss->walk_rewalk_all = o && o->rewalk_all ? 1 : 0;
	*out = w;
	return 0;
}

void ctop_walk_destroy(struct ctop_walk *w)
{
	if (!w)
		return;
	if (w->poke_h)
		nfct_close(w->poke_h);
	ctop_walk_entry_bpf__destroy(w->own_skel);
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

/* Delete ctop's own 127.0.0.1:sport -> 127.0.0.1:9 UDP entry over the
 * handle opened in its namespace, and close the handle. */
static int forget_entry(struct nfct_handle *h, uint16_t sport, struct ctop_err *e)
{
	struct nf_conntrack *ct;
	int err = 0;

	ct = nfct_new();
	if (!ct) {
		nfct_close(h);
		return ctop_err_set(e, ENOMEM, "ctnetlink", "out of memory");
	}
	nfct_set_attr_u8(ct, ATTR_L3PROTO, AF_INET);
	nfct_set_attr_u32(ct, ATTR_IPV4_SRC, htonl(INADDR_LOOPBACK));
	nfct_set_attr_u32(ct, ATTR_IPV4_DST, htonl(INADDR_LOOPBACK));
	nfct_set_attr_u8(ct, ATTR_L4PROTO, IPPROTO_UDP);
	nfct_set_attr_u16(ct, ATTR_PORT_SRC, htons(sport));
	nfct_set_attr_u16(ct, ATTR_PORT_DST, htons(9));
	if (nfct_query(h, NFCT_Q_DESTROY, ct) < 0)
		err = ctop_err_set(e, errno, "ctnetlink", "cannot delete ctop's own locating entry: %s", strerror(errno));
	nfct_destroy(ct);
	nfct_close(h);
	return err;
}

int ctop_walk_forget_poke(struct ctop_walk *w, struct ctop_err *e)
{
	struct nfct_handle *h = w->poke_h;

	if (!h)
		return 0;
	w->poke_h = NULL;
	return forget_entry(h, w->poke_sport, e);
}

/* ---- an entry of ctop's own (bpf/walk_entry.bpf.c) ------------------------ */

/* Source port of ctop's own entry: any port does, the namespace is new and empty. */
#define OWN_ENTRY_SPORT 40009

struct own_job {
	/* in: the object loaded by an earlier job, or NULL; out: the loaded
	 * object, for the caller to keep or destroy (it is not bound to the
	 * namespace: the test run makes the entry in the running thread's) */
	struct ctop_walk_entry_bpf *skel;
	struct nfct_handle *h; /* out: ctnetlink in the entry's namespace (keeps the namespace alive) */
	uint64_t node;         /* out: the entry's original-direction node */
	int err;
	struct ctop_err e;
	double ms;
};

/* In a thread, so that only this thread changes namespace: a namespace of
 * its own and the entry made there. The namespace outlives the thread as long
 * as j->h (a socket in it) is open; the entry is deleted through j->h. */
static void *own_entry_in_new_netns(void *arg)
{
	struct own_job *j = arg;
	struct ctop_walk_entry_bpf *skel = j->skel;
	/* a test run needs at least an Ethernet header of packet */
	unsigned char pkt[64] = { 0 };
	DECLARE_LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt));
	double t0 = now_ms();
	int err;

	if (unshare(CLONE_NEWNET)) {
		j->err = ctop_err_set(&j->e, errno, "netns", "cannot make a network namespace: %s", strerror(errno));
		goto done;
	}
	/* the handle that deletes the entry again, opened in this namespace */
	j->h = nfct_open(CONNTRACK, 0);
	if (!j->h) {
		j->err = ctop_err_set(&j->e, errno, "ctnetlink", "cannot open ctnetlink: %s", strerror(errno));
		goto done;
	}
	if (!skel) {
		skel = ctop_walk_entry_bpf__open();
		if (!skel) {
			j->err = ctop_err_set(&j->e, errno, "open", "cannot open the own-entry BPF object: %s", strerror(errno));
			goto done;
		}
		err = ctop_walk_entry_bpf__load(skel);
		if (err) {
			/* Linux < 6.0 has no conntrack kfuncs: the caller finds the table another way */
			j->err = ctop_err_set(&j->e, err, "load",
					      "the kernel refused the own-entry program (conntrack kfuncs, Linux >= 6.0): %s",
					      strerror(-err));
			ctop_walk_entry_bpf__destroy(skel);
			skel = NULL;
			goto done;
		}
	}
	skel->bss->entry_sport = htons(OWN_ENTRY_SPORT);
	err = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.ctop_walk_own_entry), &opts);
	if (err) {
		j->err = ctop_err_set(&j->e, err, "test-run", "BPF_PROG_TEST_RUN of ctop_walk_own_entry failed: %s", strerror(-err));
		goto done;
	}
	if (!skel->bss->entry_node) {
		int k = skel->bss->entry_err;

		j->err = ctop_err_set(&j->e, k < 0 ? k : EIO, "own-entry", "the kernel refused ctop's own entry: %s",
				      strerror(k < 0 ? -k : EIO));
		goto done;
	}
	j->node = skel->bss->entry_node;
done:
	j->skel = skel;
	j->ms = now_ms() - t0;
	return NULL;
}

/* The table from the entry the job made (when it made one), and that entry
 * deleted whether or not the table was found: it would go with its namespace
 * anyway, but only after the kernel walks the whole hash for it. */
static int locate_from_own(struct ctop_walk *w, struct own_job *j, uint64_t *base, uint32_t *bucket, struct ctop_err *e)
{
	int err = j->err;

	/* the walker keeps the loaded object for its next own entry */
	if (j->skel != w->own_skel) {
		ctop_walk_entry_bpf__destroy(w->own_skel);
		w->own_skel = j->skel;
	}
	j->skel = NULL;

	if (err) {
		if (e)
			*e = j->e;
	} else {
		err = ctop_walk_locate(w, j->node, 0, base, bucket, e);
	}
	if (j->h) {
		struct ctop_err de = { 0 };
		int derr = forget_entry(j->h, OWN_ENTRY_SPORT, &de);

		j->h = NULL;
		if (derr && !err) {
			err = derr;
			if (e)
				*e = de;
		}
	}
	return err;
}

int ctop_walk_locate_own(struct ctop_walk *w, uint64_t *base, uint32_t *bucket, struct ctop_err *e)
{
	struct own_job j = { .skel = w->own_skel };
	pthread_t t;
	int err;

	err = pthread_create(&t, NULL, own_entry_in_new_netns, &j);
	if (err)
		return ctop_err_set(e, err, "netns", "cannot start a thread: %s", strerror(err));
	pthread_join(t, NULL);
	return locate_from_own(w, &j, base, bucket, e);
}

/* ---- starting early: load and locate beside the caller's own start-up ------- */

struct ctop_walk_start {
	pthread_t thread;
	struct ctop_walk_opts opts;
	int locate_own;
	struct ctop_walk *w;
	struct ctop_walk_started r;
};

/* The walk programs load on this thread while a second one makes ctop's own
 * entry (its own BPF object, verified at the same time on the other CPU);
 * then the table is found from that entry and the entry deleted. */
static void *start_thread(void *arg)
{
	struct ctop_walk_start *s = arg;
	struct own_job j = { 0 };
	pthread_t own;
	int own_started = 0;
	double t0 = now_ms(), t1;

	s->r.locate_err = ENOENT;
	ctop_err_set(&s->r.locate_e, ENOENT, "locate", "not asked to find the table");
	if (s->locate_own) {
		int err = pthread_create(&own, NULL, own_entry_in_new_netns, &j);

		if (err)
			s->r.locate_err = ctop_err_set(&s->r.locate_e, err, "netns", "cannot start a thread: %s", strerror(err));
		own_started = !err;
	}
	/* (it begins libbpf's log afresh: the entry's thread reports its own errors) */
	s->r.load_err = ctop_walk_open(&s->opts, &s->w, &s->r.load_e);
	if (s->r.load_err)
		snprintf(s->r.load_log, sizeof(s->r.load_log), "%s", ctop_libbpf_log());
	t1 = now_ms();
	s->r.load_ms = t1 - t0;
	if (own_started) {
		pthread_join(own, NULL);
		t1 = now_ms();
		if (s->w) {
			s->r.locate_err = locate_from_own(s->w, &j, &s->r.base, &s->r.bucket, &s->r.locate_e);
		} else {
			s->r.locate_err = ctop_err_set(&s->r.locate_e, ECANCELED, "locate", "the walk programs did not load");
			if (j.h)
				forget_entry(j.h, OWN_ENTRY_SPORT, NULL);
			ctop_walk_entry_bpf__destroy(j.skel);
		}
		/* making the entry (beside the load), then finding the table from it and deleting it */
		s->r.locate_ms = j.ms + (now_ms() - t1);
	}
	return NULL;
}

int ctop_walk_start(const struct ctop_walk_opts *o, int locate_own, struct ctop_walk_start **out, struct ctop_err *e)
{
	struct ctop_walk_start *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return ctop_err_set(e, ENOMEM, "open", "out of memory");
	if (o)
		s->opts = *o;
	s->locate_own = locate_own;
	err = pthread_create(&s->thread, NULL, start_thread, s);
	if (err) {
		free(s);
		return ctop_err_set(e, err, "open", "cannot start a thread: %s", strerror(err));
	}
	*out = s;
	return 0;
}

void ctop_walk_start_join(struct ctop_walk_start *s, struct ctop_walk **w, struct ctop_walk_started *r)
{
	pthread_join(s->thread, NULL);
	if (r)
		*r = s->r;
	if (w)
		*w = s->w;
	else
		ctop_walk_destroy(s->w);
	free(s);
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

/* ---- the walk --------------------------------------------------------------- */

/* The walk's runs, shared by its threads: each takes the next range of
 * buckets until none is left. */
struct walk_job {
	int prog_fd;
	uint32_t size, per_run;
	uint32_t next_run;    /* atomic: index of the next run to take */
	uint32_t runs;        /* atomic */
	uint64_t max_run_ns;  /* atomic maximum */
	uint64_t cpu_ns;      /* atomic: the threads' CPU time over their runs */
	int err;              /* the first failing run's error, 0 */
};

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *walk_runs(void *arg)
{
	struct walk_job *j = arg;
	uint64_t cpu0 = thread_cpu_ns();

	for (;;) {
		uint64_t start = (uint64_t)__atomic_fetch_add(&j->next_run, 1, __ATOMIC_RELAXED) * j->per_run;
		/* ctx_in: the run's first bucket and bucket count (the program's ctx[0], ctx[1]) */
		uint64_t ctx[2] = { start, j->per_run };
		DECLARE_LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = ctx, .ctx_size_in = sizeof(ctx));
		uint64_t ns, seen;
		double t0;
		int err;

		if (start >= j->size || __atomic_load_n(&j->err, __ATOMIC_RELAXED))
			break;
		t0 = now_ms();
		err = bpf_prog_test_run_opts(j->prog_fd, &opts);
		if (err) {
			int none = 0;

			__atomic_compare_exchange_n(&j->err, &none, err, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
			break;
		}
		ns = (uint64_t)((now_ms() - t0) * 1e6);
		seen = __atomic_load_n(&j->max_run_ns, __ATOMIC_RELAXED);
		while (ns > seen && !__atomic_compare_exchange_n(&j->max_run_ns, &seen, ns, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			;
		__atomic_fetch_add(&j->runs, 1, __ATOMIC_RELAXED);
		/* let softirqs and other tasks in between runs */
		sched_yield();
	}
	__atomic_fetch_add(&j->cpu_ns, thread_cpu_ns() - cpu0, __ATOMIC_RELAXED);
	return NULL;
}

/* Every CPU's slot of the walk's per-CPU statistics, zeroed, or summed into r. */
static int stats_zero(struct ctop_walk *w)
{
	int ncpu = libbpf_num_possible_cpus();
	uint32_t zero = 0;
	void *buf;
	int err;

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	buf = calloc((size_t)ncpu, sizeof(struct ctop_walk_stats));
	if (!buf)
		return -ENOMEM;
	err = bpf_map_update_elem(bpf_map__fd(w->skel->maps.walk_stats), &zero, buf, BPF_ANY) ? -errno : 0;
	free(buf);
	return err;
}

static int stats_sum(struct ctop_walk *w, struct ctop_walk_result *r)
{
	int ncpu = libbpf_num_possible_cpus();
	struct ctop_walk_stats *per;
	uint32_t zero = 0;

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	per = calloc((size_t)ncpu, sizeof(*per));
	if (!per)
		return -ENOMEM;
	if (bpf_map_lookup_elem(bpf_map__fd(w->skel->maps.walk_stats), &zero, per)) {
		int err = -errno;

		free(per);
		return err;
	}
	for (int c = 0; c < ncpu; c++) {
		struct ctop_walk_stats *s = &per[c];

		r->buckets += s->done;
		r->nodes += s->nodes;
		r->census_entries += s->census_entries;
		r->rewalked += s->rewalked;
		r->inconsistent += s->inconsistent;
		if (s->longest > r->longest)
			r->longest = s->longest;
		for (int i = 0; i < CTOP_WALK_HIST; i++)
			r->hist[i] += s->hist[i];
	}
	free(per);
	return 0;
}

static int census_maps_clear(struct ctop_walk *w);

int ctop_walk_chains(struct ctop_walk *w, uint64_t base, uint32_t size, uint32_t per_run, int census, int addrs,
		     uint32_t threads, struct ctop_walk_result *r, struct ctop_err *e)
{
	struct ctop_walk_bpf__bss *b = w->skel->bss;
	struct bpf_program *prog = w->direct ? w->skel->progs.ctop_walk_chain_direct : w->skel->progs.ctop_walk_chain;
	struct walk_job j = { .prog_fd = bpf_program__fd(prog), .size = size };
	pthread_t helpers[CTOP_WALK_MAX_THREADS];
	uint32_t nhelpers = 0, nruns;
	int err;

	if (!per_run)
		per_run = 4096;
	j.per_run = per_run;
	nruns = (uint32_t)(((uint64_t)size + per_run - 1) / per_run);
	if (!threads) {
		long online = sysconf(_SC_NPROCESSORS_ONLN);

		threads = online > 0 ? (uint32_t)online : 1;
	}
	if (threads > CTOP_WALK_MAX_THREADS)
		threads = CTOP_WALK_MAX_THREADS;
	if (threads > nruns)
		threads = nruns ? nruns : 1;
	memset(r, 0, sizeof(*r));
	/* one loaded walker serves every census: the counts of the last one go */
	if (census && w->census_dirty) {
		err = census_maps_clear(w);
		if (err)
			return ctop_err_set(e, err, "read", "cannot clear the census maps: %s", strerror(-err));
	}
	err = stats_zero(w);
	if (err)
		return ctop_err_set(e, err, "read", "cannot reset the walk's statistics: %s", strerror(-err));
	b->census_enabled = census ? 1 : 0;
	b->census_addrs_enabled = addrs ? 1 : 0;
	b->walk_base = base;
	b->walk_size = size;
	if (census)
		w->census_dirty = 1;
	/* the calling thread walks too; the helpers take runs beside it */
	for (; nhelpers + 1 < threads; nhelpers++)
		if (pthread_create(&helpers[nhelpers], NULL, walk_runs, &j))
			break;
	walk_runs(&j);
	for (uint32_t i = 0; i < nhelpers; i++)
		pthread_join(helpers[i], NULL);
	if (j.err)
		return ctop_err_set(e, j.err, "test-run", "BPF_PROG_TEST_RUN of %s failed: %s", bpf_program__name(prog),
				    strerror(-j.err));
	err = stats_sum(w, r);
	if (err)
		return ctop_err_set(e, err, "read", "cannot read the walk's statistics: %s", strerror(-err));
	r->runs = j.runs;
	r->max_run_ns = j.max_run_ns;
	r->cpu_ns = j.cpu_ns;
	r->threads = nhelpers + 1;
	r->nf_conn_bytes = b->nf_conn_bytes;
	r->direct_loads = (uint32_t)w->direct;
	return 0;
}

/* ---- reading the census maps ------------------------------------------------ */

/* One census map's rows: keys, and each value's u64 words summed over the
 * CPUs (a per-CPU map holds one value per possible CPU). */
struct map_rows {
	void *keys;
	uint64_t *vals;  /* words per row: the value's size / 8 */
	size_t n;
};

static void map_rows_free(struct map_rows *m)
{
	free(m->keys);
	free(m->vals);
	m->keys = NULL;
	m->vals = NULL;
	m->n = 0;
}

/* Deletes the keys read, so that the next walk counts from zero: one
 * syscall (kernel >= 5.6), else one per key. */
static int map_delete(int fd, void *keys, size_t n, size_t key_sz)
{
	DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 count = (__u32)n;

	if (!n || !bpf_map_delete_batch(fd, keys, &count, &opts))
		return 0;
	if (errno != EINVAL && errno != 524 /* kernel ENOTSUPP */ && errno != EOPNOTSUPP)
		return -errno;
	for (size_t i = 0; i < n; i++)
		if (bpf_map_delete_elem(fd, (char *)keys + i * key_sz) && errno != ENOENT)
			return -errno;
	return 0;
}

/* Every row of a census map, values summed over the CPUs; the map is left empty. */
static int map_take(struct bpf_map *m, struct map_rows *out)
{
	int percpu = bpf_map__type(m) == BPF_MAP_TYPE_PERCPU_HASH;
	int ncpu = percpu ? libbpf_num_possible_cpus() : 1;
	size_t key_sz = bpf_map__key_size(m), words = bpf_map__value_size(m) / 8;
	uint64_t *raw = NULL;
	int err;

	memset(out, 0, sizeof(*out));
	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	err = ctop_map_read(bpf_map__fd(m), key_sz, words * 8 * (size_t)ncpu, bpf_map__max_entries(m), &out->keys,
			    (void **)&raw, &out->n);
	if (!err)
		err = map_delete(bpf_map__fd(m), out->keys, out->n, key_sz);
	if (err) {
		free(raw);
		map_rows_free(out);
		return err;
	}
	/* sum in place: row i's CPU c starts at word (i * ncpu + c) * words */
	for (size_t i = 0; i < out->n; i++)
		for (size_t k = 0; k < words; k++) {
			uint64_t sum = 0;

			for (int c = 0; c < ncpu; c++)
				sum += raw[(i * (size_t)ncpu + (size_t)c) * words + k];
			raw[i * words + k] = sum;
		}
	out->vals = raw;
	return 0;
}

static int census_maps_clear(struct ctop_walk *w)
{
	struct bpf_map *maps[] = { w->skel->maps.census_groups, w->skel->maps.census_addrs,
				   w->skel->maps.census_overflow, w->skel->maps.census_remain };

	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		struct map_rows rows;
		int err = map_take(maps[i], &rows);

		map_rows_free(&rows);
		if (err)
			return err;
	}
	w->census_dirty = 0;
	return 0;
}

/* One namespace's census and its arrays' capacities while they fill. */
struct ns_census {
	uint32_t netns;
	struct ctop_census *c;
	size_t groups_cap, srcs_cap, dsts_cap;
};

struct census_set {
	struct ns_census *ns;
	size_t n, cap;
};

static struct ns_census *census_of(struct census_set *s, uint32_t netns)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->ns[i].netns == netns)
			return &s->ns[i];
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 8;
		struct ns_census *na = realloc(s->ns, nc * sizeof(*na));

		if (!na)
			return NULL;
		s->ns = na;
		s->cap = nc;
	}
	s->ns[s->n] = (struct ns_census){ .netns = netns, .c = calloc(1, sizeof(struct ctop_census)) };
	if (!s->ns[s->n].c)
		return NULL;
	return &s->ns[s->n++];
}

/* Room for one more element at the end of *p (n used of *cap, sz bytes each). */
static void *push(void **p, size_t *n, size_t *cap, size_t sz)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		void *np = realloc(*p, nc * sz);

		if (!np)
			return NULL;
		*p = np;
		*cap = nc;
	}
	return (char *)*p + (*n)++ * sz;
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

static int add_groups(struct census_set *s, const struct map_rows *m)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct ctop_census_key *k = (const struct ctop_census_key *)m->keys + i;
		const uint64_t *v = m->vals + i * 3; /* struct ctop_census_val: entries, assured, unreplied */
		struct ns_census *ns = census_of(s, k->netns);
		struct ctop_census_group *g;

		if (!ns || !(g = push((void **)&ns->c->groups, &ns->c->ngroups, &ns->groups_cap, sizeof(*g))))
			return -ENOMEM;
		*g = (struct ctop_census_group){
			.family = k->family, .l4proto = k->proto, .state = k->state, .port = k->port,
			.entries = (uint32_t)v[0], .assured = (uint32_t)v[1], .unreplied = (uint32_t)v[2],
		};
		ns->c->entries += v[0];
		ns->c->assured += v[1];
		ns->c->unreplied += v[2];
	}
	return 0;
}

static int add_addrs(struct census_set *s, const struct map_rows *m)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct ctop_census_addr_key *k = (const struct ctop_census_addr_key *)m->keys + i;
		struct ns_census *ns = census_of(s, k->netns);
		struct ctop_census_addr *a;

		if (!ns)
			return -ENOMEM;
		a = k->dir == 0 ? push((void **)&ns->c->srcs, &ns->c->nsrcs, &ns->srcs_cap, sizeof(*a))
				: push((void **)&ns->c->dsts, &ns->c->ndsts, &ns->dsts_cap, sizeof(*a));
		if (!a)
			return -ENOMEM;
		*a = (struct ctop_census_addr){ .family = k->family, .entries = (uint32_t)m->vals[i] };
		memcpy(a->addr, k->addr, 16);
	}
	return 0;
}

static int add_overflows(struct census_set *s, const struct map_rows *m)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct ctop_census_ovf_key *k = (const struct ctop_census_ovf_key *)m->keys + i;
		struct ns_census *ns = census_of(s, k->netns);

		if (!ns)
			return -ENOMEM;
		if (k->what == 0)
			ns->c->src_overflow += m->vals[i];
		else if (k->what == 1)
			ns->c->dst_overflow += m->vals[i];
		else if (k->what == 3)
			ns->c->remain_overflow += m->vals[i];
		else
			ns->c->group_overflow += m->vals[i];
	}
	return 0;
}

_Static_assert(CTOP_REMAIN_SLOTS == CTOP_CENSUS_REMAIN_SLOTS, "walk.h and ctop_core.h slot counts differ");

static int add_remaining(struct census_set *s, const struct map_rows *m)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct ctop_census_remain_key *k = (const struct ctop_census_remain_key *)m->keys + i;
		const uint64_t *slot = m->vals + i * CTOP_REMAIN_SLOTS;
		struct ns_census *ns = census_of(s, k->netns);

		if (!ns)
			return -ENOMEM;
		if (k->state >= CTOP_TCP_STATES)
			continue;
		for (int j = 0; j < CTOP_REMAIN_SLOTS; j++)
			ns->c->tcp_remain[k->state][j] += slot[j];
	}
	return 0;
}

int ctop_walk_read_census(struct ctop_walk *w, struct ctop_walk_census **out, size_t *n, struct ctop_err *e)
{
	static const struct {
		size_t map;  /* index into maps[] */
		int (*add)(struct census_set *, const struct map_rows *);
	} steps[] = { { 0, add_groups }, { 1, add_addrs }, { 2, add_overflows }, { 3, add_remaining } };
	struct bpf_map *maps[] = { w->skel->maps.census_groups, w->skel->maps.census_addrs,
				   w->skel->maps.census_overflow, w->skel->maps.census_remain };
	struct census_set s = { 0 };
	struct ctop_walk_census *arr;
	int err = 0;

	_Static_assert(sizeof(struct ctop_census_val) == 3 * sizeof(uint64_t), "add_groups reads three words");
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]) && !err; i++) {
		struct map_rows rows;

		err = map_take(maps[steps[i].map], &rows);
		if (!err)
			err = steps[i].add(&s, &rows);
		map_rows_free(&rows);
	}
	if (!err)
		w->census_dirty = 0;
	arr = err ? NULL : calloc(s.n ? s.n : 1, sizeof(*arr));
	if (!arr) {
		if (!err)
			err = -ENOMEM;
		for (size_t i = 0; i < s.n; i++)
			ctop_census_free(s.ns[i].c);
		free(s.ns);
		return ctop_err_set(e, err, "read", "cannot read the census maps: %s", strerror(-err));
	}
	for (size_t i = 0; i < s.n; i++) {
		struct ctop_census *c = s.ns[i].c;

		/* the walk read timeouts only where it knew HZ */
		c->remain_valid = w->skel->bss->census_remain_ok != 0;
		qsort(c->groups, c->ngroups, sizeof(*c->groups), group_desc);
		qsort(c->srcs, c->nsrcs, sizeof(*c->srcs), ctop_census_addr_cmp_desc);
		qsort(c->dsts, c->ndsts, sizeof(*c->dsts), ctop_census_addr_cmp_desc);
		arr[i] = (struct ctop_walk_census){ .netns = s.ns[i].netns, .c = c };
	}
	*out = arr;
	*n = s.n;
	free(s.ns);
	return 0;
}

void ctop_walk_census_free(struct ctop_walk_census *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ctop_census_free(a[i].c);
	free(a);
}
