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
#include "ctop_core.h"
#include "walk.h"
#include "walk.skel.h"

_Static_assert(CTOP_WALK_HIST == sizeof(((struct ctop_walk_result *)0)->hist) / sizeof(uint64_t),
	       "ctop_walk_result.hist matches CTOP_WALK_HIST");

struct ctop_walk {
	struct ctop_walk_bpf *skel;
};

int ctop_walk_open(struct ctop_walk **out, struct ctop_err *e)
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
	err = ctop_walk_bpf__load(w->skel);
	if (err) {
		ctop_walk_bpf__destroy(w->skel);
		free(w);
		return ctop_err_set(e, err, "load", "the kernel refused the hash-walk programs: %s", strerror(-err));
	}
	*out = w;
	return 0;
}

void ctop_walk_destroy(struct ctop_walk *w)
{
	if (!w)
		return;
	ctop_walk_bpf__destroy(w->skel);
	free(w);
}

struct poke_job {
	const char *path;
	int err;
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
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || sendto(s, "c", 1, 0, (struct sockaddr *)&dst, sizeof(dst)) < 0)
		j->err = errno;
	if (s >= 0)
		close(s);
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
	link = bpf_program__attach(w->skel->progs.walk_capture);
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
	err = run(w->skel->progs.walk_locate, "walk_locate", e);
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

int ctop_walk_chains(struct ctop_walk *w, uint64_t base, uint32_t size, uint32_t per_run,
		     struct ctop_walk_result *r, struct ctop_err *e)
{
	struct ctop_walk_bpf__bss *b = w->skel->bss;
	int err;

	if (!per_run)
		per_run = 4096;
	memset(b->walk_hist, 0, sizeof(b->walk_hist));
	b->walk_nodes = 0;
	b->walk_longest = b->walk_rewalked = b->walk_inconsistent = b->walk_done = 0;
	b->walk_base = base;
	b->walk_size = size;
	memset(r, 0, sizeof(*r));
	for (uint64_t start = 0; start < size; start += per_run) {
		b->walk_start = (uint32_t)start;
		b->walk_count = per_run;
		err = run(w->skel->progs.walk_chains, "walk_chains", e);
		if (err)
			return err;
		r->runs++;
		/* let softirqs and other tasks in between runs */
		sched_yield();
	}
	r->buckets = b->walk_done;
	r->nodes = b->walk_nodes;
	r->longest = b->walk_longest;
	r->rewalked = b->walk_rewalked;
	r->inconsistent = b->walk_inconsistent;
	memcpy(r->hist, b->walk_hist, sizeof(r->hist));
	return 0;
}
