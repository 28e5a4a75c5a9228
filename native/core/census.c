// SPDX-License-Identifier: GPL-2.0
/*
 * The table census over ctnetlink: one dump of a namespace's conntrack table
 * (what `conntrack -L` asks for), parsed by libnetfilter_conntrack and counted
 * here, in C, with no text in between: per (family, L4 protocol, original
 * destination port, TCP state) the entries, how many are assured and how many
 * never saw a reply (the ones early drop may evict), and per original source
 * and destination address the entries, in bounded tables with an overflow
 * count.
 *
 * The dump runs on the namespace's ctnetlink socket, which the kernel ties to
 * the namespace it was created in (ctop_netns_open), so the caller's thread
 * never changes namespace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include "ctop_core.h"

/* A dump answers in skbs of at most 32 KiB (netlink caps max_recvmsg_len);
 * a bigger user buffer costs nothing and never truncates. */
#define DUMP_BUF_BYTES (64 * 1024)
/* The dump is flow-controlled by our reads, but events or a slow reader must
 * not make the socket drop anything: 16 MiB, forced past rmem_max (root). */
#define DUMP_RCVBUF_BYTES (16 * 1024 * 1024)

/* ---- open-addressing tables ------------------------------------------------ */

static uint64_t mix64(uint64_t x)
{
	/* splitmix64's finaliser: enough spread for keys that differ in few bits */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

struct group_table {
	struct ctop_census_group *slots; /* entries == 0: empty */
	size_t cap, used;
};

static uint64_t group_key(uint8_t family, uint8_t proto, uint16_t port, uint8_t state)
{
	return ((uint64_t)family << 32) | ((uint64_t)proto << 24) | ((uint64_t)port << 8) | state;
}

static int group_grow(struct group_table *t)
{
	size_t ncap = t->cap ? t->cap * 2 : 1024;
	struct ctop_census_group *ns = calloc(ncap, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++) {
		struct ctop_census_group *g = &t->slots[i];

		if (!g->entries)
			continue;
		size_t j = mix64(group_key(g->family, g->l4proto, g->port, g->state)) & (ncap - 1);
		while (ns[j].entries)
			j = (j + 1) & (ncap - 1);
		ns[j] = *g;
	}
	free(t->slots);
	t->slots = ns;
	t->cap = ncap;
	return 0;
}

static struct ctop_census_group *group_get(struct group_table *t, uint8_t family, uint8_t proto, uint16_t port,
					   uint8_t state)
{
	if ((t->used + 1) * 2 > t->cap && group_grow(t))
		return NULL;
	size_t j = mix64(group_key(family, proto, port, state)) & (t->cap - 1);
	for (;; j = (j + 1) & (t->cap - 1)) {
		struct ctop_census_group *g = &t->slots[j];

		if (!g->entries) {
			g->family = family;
			g->l4proto = proto;
			g->port = port;
			g->state = state;
			t->used++;
			return g;
		}
		if (g->family == family && g->l4proto == proto && g->port == port && g->state == state)
			return g;
	}
}

/* Addresses: a fixed capacity (max_addrs, at most half the slots used); an
 * address that finds the table full is counted in overflow only. */
struct addr_table {
	struct ctop_census_addr *slots;
	size_t cap, used, max;
	uint64_t overflow;
};

static int addr_init(struct addr_table *t, uint32_t max)
{
	size_t cap = 16;

	while (cap < (size_t)max * 2)
		cap *= 2;
	t->slots = calloc(cap, sizeof(*t->slots));
	t->cap = cap;
	t->max = max;
	return t->slots ? 0 : -ENOMEM;
}

static void addr_add(struct addr_table *t, uint8_t family, const void *addr, size_t len)
{
	uint64_t h = family;
	uint8_t a[16] = { 0 };

	memcpy(a, addr, len);
	for (int i = 0; i < 16; i += 8) {
		uint64_t w;

		memcpy(&w, a + i, 8);
		h = mix64(h ^ w);
	}
	for (size_t j = h & (t->cap - 1);; j = (j + 1) & (t->cap - 1)) {
		struct ctop_census_addr *s = &t->slots[j];

		if (!s->entries) {
			if (t->used >= t->max) {
				t->overflow++;
				return;
			}
			s->family = family;
			memcpy(s->addr, a, 16);
			s->entries = 1;
			t->used++;
			return;
		}
		if (s->family == family && !memcmp(s->addr, a, 16)) {
			s->entries++;
			return;
		}
	}
}

int ctop_census_addr_cmp_desc(const void *x, const void *y)
{
	const struct ctop_census_addr *a = x, *b = y;

	if (a->entries != b->entries)
		return a->entries < b->entries ? 1 : -1;
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->addr, b->addr, 16);
}

/* Compact the used slots to the front, largest first (ties by address, so
 * the order is stable between runs). */
static void addr_finish(struct addr_table *t, struct ctop_census_addr **out, size_t *n, uint64_t *overflow)
{
	size_t k = 0;

	for (size_t i = 0; i < t->cap; i++)
		if (t->slots[i].entries)
			t->slots[k++] = t->slots[i];
	qsort(t->slots, k, sizeof(*t->slots), ctop_census_addr_cmp_desc);
	*out = t->slots;
	*n = k;
	*overflow = t->overflow;
}

/* ---- the dump ------------------------------------------------------------- */

struct census_run {
	struct nf_conntrack *ct;
	struct group_table groups;
	struct addr_table src, dst;
	struct ctop_census *c;
	int nomem;
};

static int has_ports(uint8_t proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE ||
	       proto == IPPROTO_SCTP || proto == IPPROTO_DCCP;
}

static int census_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct census_run *r = data;
	struct nf_conntrack *ct = r->ct;
	struct ctop_census_group *g;
	uint8_t family, proto, state = CTOP_CENSUS_NO_STATE;
	uint16_t port = 0;
	uint32_t status;

	if (nfct_nlmsg_parse(nlh, ct) < 0) {
		r->c->parse_errors++;
		return MNL_CB_OK;
	}
	/* One nf_conntrack object is reused: read only attributes every entry
	 * of this family and protocol carries, so nothing stale leaks in. */
	family = nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO);
	proto = nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO);
	status = nfct_get_attr_u32(ct, ATTR_STATUS);
	if (has_ports(proto))
		port = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST));
	if (proto == IPPROTO_TCP && nfct_attr_is_set(ct, ATTR_TCP_STATE))
		state = nfct_get_attr_u8(ct, ATTR_TCP_STATE);

	g = group_get(&r->groups, family, proto, port, state);
	if (!g) {
		r->nomem = 1;
		return MNL_CB_ERROR;
	}
	g->entries++;
	r->c->entries++;
	/* CTA_TIMEOUT: seconds left, as the kernel reports them (nf_ct_expires / HZ) */
	if (proto == IPPROTO_TCP && state < CTOP_TCP_STATES && nfct_attr_is_set(ct, ATTR_TIMEOUT))
		r->c->tcp_remain[state][ctop_remain_slot(nfct_get_attr_u32(ct, ATTR_TIMEOUT))]++;
	if (status & IPS_ASSURED) {
		g->assured++;
		r->c->assured++;
	}
	if (!(status & IPS_SEEN_REPLY)) {
		g->unreplied++;
		r->c->unreplied++;
	}
	if (family == AF_INET) {
		addr_add(&r->src, family, nfct_get_attr(ct, ATTR_ORIG_IPV4_SRC), 4);
		addr_add(&r->dst, family, nfct_get_attr(ct, ATTR_ORIG_IPV4_DST), 4);
	} else if (family == AF_INET6) {
		addr_add(&r->src, family, nfct_get_attr(ct, ATTR_ORIG_IPV6_SRC), 16);
		addr_add(&r->dst, family, nfct_get_attr(ct, ATTR_ORIG_IPV6_DST), 16);
	}
	return MNL_CB_OK;
}

static int group_cmp(const void *x, const void *y)
{
	const struct ctop_census_group *a = x, *b = y;

	if (a->entries != b->entries)
		return a->entries < b->entries ? 1 : -1;
	uint64_t ka = group_key(a->family, a->l4proto, a->port, a->state);
	uint64_t kb = group_key(b->family, b->l4proto, b->port, b->state);
	return ka < kb ? -1 : ka > kb;
}

int ctop_netns_census(struct ctop_netns *ns, uint32_t max_addrs, struct ctop_census **out, struct ctop_err *e)
{
	struct census_run r = { 0 };
	struct mnl_socket *nl = ctop_netns_mnl(ns);
	unsigned int portid = mnl_socket_get_portid(nl), seq = ctop_netns_next_seq(ns);
	int fd = mnl_socket_get_fd(nl), rcvbuf = DUMP_RCVBUF_BYTES, ret, err = 0;
	char *buf = NULL;
	struct nlmsghdr *nlh;
	struct nfgenmsg *g;
	ssize_t len;

	if (max_addrs == 0)
		max_addrs = 1;
	r.c = calloc(1, sizeof(*r.c));
	if (r.c)
		r.c->remain_valid = 1;
	r.ct = nfct_new();
	buf = malloc(DUMP_BUF_BYTES);
	if (!r.c || !r.ct || !buf || group_grow(&r.groups) || addr_init(&r.src, max_addrs) ||
	    addr_init(&r.dst, max_addrs)) {
		err = ctop_err_set(e, ENOMEM, "census", "out of memory");
		goto out;
	}
	/* SO_RCVBUFFORCE needs CAP_NET_ADMIN; without it, the plain option (capped by rmem_max) */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->nfgen_family = AF_UNSPEC; /* both families */
	g->version = NFNETLINK_V0;
	g->res_id = 0;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		err = ctop_err_set(e, errno, "census", "cannot send the ctnetlink dump request: %s", strerror(errno));
		goto out;
	}
	for (;;) {
		len = mnl_socket_recvfrom(nl, buf, DUMP_BUF_BYTES);
		if (len < 0) {
			/* ENOBUFS: the kernel dropped part of the answer; the counts would be short */
			err = ctop_err_set(e, errno, "census", "cannot read the ctnetlink dump: %s", strerror(errno));
			goto out;
		}
		ret = mnl_cb_run(buf, (size_t)len, seq, portid, census_msg_cb, &r);
		if (ret == MNL_CB_STOP)
			break;
		if (ret < 0) {
			err = r.nomem ? ctop_err_set(e, ENOMEM, "census", "out of memory")
				      : ctop_err_set(e, errno, "census", "the ctnetlink dump failed: %s", strerror(errno));
			goto out;
		}
	}

	/* groups: compact and sort, largest first */
	{
		size_t k = 0;

		for (size_t i = 0; i < r.groups.cap; i++)
			if (r.groups.slots[i].entries)
				r.groups.slots[k++] = r.groups.slots[i];
		qsort(r.groups.slots, k, sizeof(*r.groups.slots), group_cmp);
		r.c->groups = r.groups.slots;
		r.c->ngroups = k;
		r.groups.slots = NULL;
	}
	addr_finish(&r.src, &r.c->srcs, &r.c->nsrcs, &r.c->src_overflow);
	addr_finish(&r.dst, &r.c->dsts, &r.c->ndsts, &r.c->dst_overflow);
	r.src.slots = r.dst.slots = NULL;
	*out = r.c;
	r.c = NULL;
out:
	if (r.ct)
		nfct_destroy(r.ct);
	free(buf);
	free(r.groups.slots);
	free(r.src.slots);
	free(r.dst.slots);
	ctop_census_free(r.c);
	if (err) {
		/* the socket may hold the rest of an abandoned dump: drain it so the
		 * next request on it reads its own answer */
		ctop_netns_drain(ns);
	}
	return err;
}

void ctop_census_free(struct ctop_census *c)
{
	if (!c)
		return;
	free(c->groups);
	free(c->srcs);
	free(c->dsts);
	free(c);
}
