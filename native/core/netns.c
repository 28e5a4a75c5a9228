// SPDX-License-Identifier: GPL-2.0
/*
 * One watched network namespace: its netfilter links and its ctnetlink socket.
 *
 * Netfilter hooks, BPF netfilter links included, belong to the namespace of
 * the task that creates them (bpf_nf_link_attach uses current->nsproxy), and a
 * netlink socket talks to the namespace it was created in. setns() changes the
 * namespace of the calling thread only, so the work happens in a short-lived
 * thread and the caller's thread never leaves its namespace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/bpf.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include "ctop_core.h"

#define CTOP_NF_LINKS 4

/* union bpf_attr's link_create as kernels >= 6.4 lay it out; Debian 12's uapi
 * header stops before the netfilter member. */
struct link_create_nf_attr {
	__u32 prog_fd;
	__u32 target_fd;
	__u32 attach_type;
	__u32 flags;
	__u32 pf;       /* NFPROTO_IPV4 2, NFPROTO_IPV6 10 */
	__u32 hooknum;  /* NF_INET_* */
	__s32 priority;
	__u32 nf_flags;
};

struct ctop_netns {
	uint32_t inum;
	int link_fds[CTOP_NF_LINKS];
	int nlinks;
	struct mnl_socket *nl;
	unsigned int seq;
};

/* The hooks ctop counts inserts at: right before the confirm step, which the
 * kernel registers on exactly these two hooks, at INT_MAX for IPv4
 * (NF_IP_PRI_CONNTRACK_CONFIRM) and for IPv6 POST_ROUTING, but at INT_MAX-1
 * (NF_IP6_PRI_LAST - 1) for IPv6 LOCAL_IN. A BPF link may not share a
 * priority with an existing hook (EBUSY), hence INT_MAX-2 everywhere; when
 * another ctop (an exporter next to an interactive session) holds that one,
 * the next lower free priority: anything above the NAT and filter hooks
 * (<= 300) sees the same unconfirmed entries. */
#define CTOP_NF_PRIORITY (INT_MAX - 2)
#define CTOP_NF_PRIORITY_TRIES 64
static const struct { __u32 pf, hook; } nf_hooks[CTOP_NF_LINKS] = {
	{ NFPROTO_IPV4, NF_INET_POST_ROUTING },
	{ NFPROTO_IPV4, NF_INET_LOCAL_IN },
	{ NFPROTO_IPV6, NF_INET_POST_ROUTING },
	{ NFPROTO_IPV6, NF_INET_LOCAL_IN },
};
const char ctop_nf_hook_desc[] =
	"netfilter POST_ROUTING+LOCAL_IN (IPv4, IPv6), priority INT_MAX-2, before the confirm step";

static int nf_link_create(int prog_fd, __u32 pf, __u32 hook)
{
	struct link_create_nf_attr a;
	int fd = -1;

	for (int i = 0; i < CTOP_NF_PRIORITY_TRIES; i++) {
		memset(&a, 0, sizeof(a));
		a.prog_fd = (__u32)prog_fd;
		a.attach_type = CTOP_BPF_NETFILTER;
		a.pf = pf;
		a.hooknum = hook;
		a.priority = CTOP_NF_PRIORITY - i;
		fd = (int)syscall(__NR_bpf, BPF_LINK_CREATE, &a, sizeof(a));
		if (fd >= 0 || errno != EBUSY)
			break;
	}
	return fd;
}

struct open_job {
	const char *path;
	int prog_fd;
	struct ctop_netns *ns;
	struct ctop_err *e;
	int ret;
};

static void *open_in_netns(void *arg)
{
	struct open_job *j = arg;
	struct ctop_netns *ns = j->ns;
	int fd;

	fd = open(j->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		j->ret = ctop_err_set(j->e, errno, "netns", "cannot open %s: %s", j->path, strerror(errno));
		return NULL;
	}
	if (setns(fd, CLONE_NEWNET)) {
		j->ret = ctop_err_set(j->e, errno, "netns", "cannot enter %s: %s", j->path, strerror(errno));
		close(fd);
		return NULL;
	}
	/* The links and the socket keep the namespace; the fd need not. */
	close(fd);

	ns->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!ns->nl || mnl_socket_bind(ns->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		j->ret = ctop_err_set(j->e, errno, "ctnetlink", "cannot open a ctnetlink socket in %s: %s",
				      j->path, strerror(errno));
		return NULL;
	}
	if (j->prog_fd >= 0) {
		for (int i = 0; i < CTOP_NF_LINKS; i++) {
			int lfd = nf_link_create(j->prog_fd, nf_hooks[i].pf, nf_hooks[i].hook);

			if (lfd < 0) {
				j->ret = ctop_err_set(j->e, errno, "attach",
						      "cannot create a netfilter link (pf %u hook %u) in %s: %s",
						      nf_hooks[i].pf, nf_hooks[i].hook, j->path, strerror(errno));
				return NULL;
			}
			ns->link_fds[ns->nlinks++] = lfd;
		}
	}
	j->ret = 0;
	return NULL;
}

int ctop_netns_open(const char *path, int nf_prog_fd, struct ctop_netns **out, struct ctop_err *e)
{
	struct ctop_netns *ns;
	struct open_job j = { .path = path, .prog_fd = nf_prog_fd, .e = e, .ret = -EINVAL };
	struct stat st;
	pthread_t t;
	int err;

	if (stat(path, &st))
		return ctop_err_set(e, errno, "netns", "cannot stat %s: %s", path, strerror(errno));
	ns = calloc(1, sizeof(*ns));
	if (!ns)
		return ctop_err_set(e, ENOMEM, "netns", "out of memory");
	ns->inum = (uint32_t)st.st_ino;
	ns->seq = (unsigned int)time(NULL);
	j.ns = ns;
	err = pthread_create(&t, NULL, open_in_netns, &j);
	if (err) {
		free(ns);
		return ctop_err_set(e, err, "netns", "cannot start a thread: %s", strerror(err));
	}
	pthread_join(t, NULL);
	if (j.ret) {
		ctop_netns_close(ns);
		return j.ret;
	}
	*out = ns;
	return 0;
}

void ctop_netns_close(struct ctop_netns *ns)
{
	if (!ns)
		return;
	for (int i = 0; i < ns->nlinks; i++)
		close(ns->link_fds[i]);
	if (ns->nl)
		mnl_socket_close(ns->nl);
	free(ns);
}

uint32_t ctop_netns_inum(const struct ctop_netns *ns) { return ns->inum; }
struct mnl_socket *ctop_netns_mnl(struct ctop_netns *ns) { return ns->nl; }
unsigned int ctop_netns_next_seq(struct ctop_netns *ns) { return ++ns->seq; }

void ctop_netns_drain(struct ctop_netns *ns)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];

	while (recv(mnl_socket_get_fd(ns->nl), buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}
int ctop_netns_links(const struct ctop_netns *ns) { return ns->nlinks; }

/* ---- ctnetlink statistics (what `conntrack -S` asks for) -------------------- */

struct stats_cb {
	struct ctop_ct_cpu_stat *out;
	int max, n;
	uint32_t count, limit;
};

static uint32_t attr_u32(const struct nlattr *a) { return ntohl(mnl_attr_get_u32(a)); }

static int cpu_attr_cb(const struct nlattr *a, void *data)
{
	struct ctop_ct_cpu_stat *s = data;
	uint32_t v;

	if (mnl_attr_type_valid(a, CTA_STATS_MAX) < 0 || mnl_attr_validate(a, MNL_TYPE_U32) < 0)
		return MNL_CB_OK; /* newer kernel, newer counter: skip it */
	v = attr_u32(a);
	switch (mnl_attr_get_type(a)) {
	case CTA_STATS_FOUND: s->found = v; break;
	case CTA_STATS_INVALID: s->invalid = v; break;
	case CTA_STATS_INSERT: s->insert = v; break;
	case CTA_STATS_INSERT_FAILED: s->insert_failed = v; break;
	case CTA_STATS_DROP: s->drop = v; break;
	case CTA_STATS_EARLY_DROP: s->early_drop = v; break;
	case CTA_STATS_ERROR: s->error = v; break;
	case CTA_STATS_SEARCH_RESTART: s->search_restart = v; break;
	case CTA_STATS_CLASH_RESOLVE: s->clash_resolve = v; break;
	case CTA_STATS_CHAIN_TOOLONG: s->chaintoolong = v; break;
	}
	return MNL_CB_OK;
}

static int cpu_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct stats_cb *cb = data;
	const struct nfgenmsg *g = mnl_nlmsg_get_payload(nlh);
	struct ctop_ct_cpu_stat *s;

	if (cb->n >= cb->max)
		return MNL_CB_OK;
	s = &cb->out[cb->n++];
	memset(s, 0, sizeof(*s));
	s->cpu = ntohs(g->res_id); /* the kernel puts the CPU number here */
	mnl_attr_parse(nlh, sizeof(*g), cpu_attr_cb, s);
	return MNL_CB_OK;
}

static int global_attr_cb(const struct nlattr *a, void *data)
{
	struct stats_cb *cb = data;

	if (mnl_attr_type_valid(a, CTA_STATS_GLOBAL_MAX) < 0 || mnl_attr_validate(a, MNL_TYPE_U32) < 0)
		return MNL_CB_OK;
	if (mnl_attr_get_type(a) == CTA_STATS_GLOBAL_ENTRIES)
		cb->count = attr_u32(a);
	else if (mnl_attr_get_type(a) == CTA_STATS_GLOBAL_MAX_ENTRIES)
		cb->limit = attr_u32(a);
	return MNL_CB_OK;
}

static int global_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	return mnl_attr_parse(nlh, sizeof(struct nfgenmsg), global_attr_cb, data) < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

static int ctnl_request(struct ctop_netns *ns, int msg, uint16_t flags, mnl_cb_t cb, void *data,
			struct ctop_err *e)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *g;
	unsigned int portid = mnl_socket_get_portid(ns->nl);
	unsigned int seq = ++ns->seq;
	ssize_t len;
	int ret;

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | msg;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->nfgen_family = AF_UNSPEC;
	g->version = NFNETLINK_V0;
	g->res_id = 0;
	if (mnl_socket_sendto(ns->nl, nlh, nlh->nlmsg_len) < 0)
		return ctop_err_set(e, errno, "ctnetlink", "cannot send a ctnetlink request: %s", strerror(errno));
	for (;;) {
		len = mnl_socket_recvfrom(ns->nl, buf, sizeof(buf));
		if (len < 0)
			return ctop_err_set(e, errno, "ctnetlink", "cannot read ctnetlink: %s", strerror(errno));
		ret = mnl_cb_run(buf, (size_t)len, seq, portid, cb, data);
		if (ret < 0)
			return ctop_err_set(e, errno, "ctnetlink", "ctnetlink answered with an error: %s",
					    strerror(errno));
		/* a dump ends with NLMSG_DONE, a request with NLM_F_ACK with its
		 * ack: either way the answer is complete at MNL_CB_STOP */
		if (ret == MNL_CB_STOP)
			return 0;
	}
}

int ctop_netns_cpu_stats(struct ctop_netns *ns, struct ctop_ct_cpu_stat *out, int max, int *n,
			 struct ctop_err *e)
{
	struct stats_cb cb = { .out = out, .max = max };
	int err = ctnl_request(ns, IPCTNL_MSG_CT_GET_STATS_CPU, NLM_F_DUMP, cpu_msg_cb, &cb, e);

	*n = cb.n;
	return err;
}

int ctop_netns_table(struct ctop_netns *ns, uint32_t *count, uint32_t *max, struct ctop_err *e)
{
	struct stats_cb cb = { 0 };
	int err = ctnl_request(ns, IPCTNL_MSG_CT_GET_STATS, NLM_F_ACK, global_msg_cb, &cb, e);

	*count = cb.count;
	*max = cb.limit;
	return err;
}
