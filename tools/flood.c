// SPDX-License-Identifier: GPL-2.0
/*
 * flood: a bounded UDP packet generator for ctop's benchmarks.
 *
 *   flood new  --dst ADDR --port P --count N --max-ms T [--ports K]
 *       every packet a new conntrack entry: raw IPv4/IPv6 packets whose
 *       source address and port walk through 198.19.0.0/16 (2001:2:0:1::/64
 *       for IPv6) x ports 1024-61023, so no tuple repeats below 3.9e9 packets;
 *       with --ports K packet i goes to port P + i mod K (only P has a
 *       receiver: the others draw an ICMP error, related to the entry)
 *   flood est  --dst ADDR --port P --count N --max-ms T
 *       one flow, established first (a reply is seen), then N packets on it:
 *       the conntrack lookup path with no new entry
 *   flood stream --dst ADDR --port P --ports K --count N --max-ms T
 *       N IPv4 flows to ports P..P+K-1 that conntrack marks ASSURED: a request
 *       per flow, then a reply per flow, then after 2 s one more request (the
 *       kernel's UDP rule: a replied flow still active 2 s after its first
 *       packet is a stream). Assured entries are never early-dropped, so a
 *       table full of them refuses new flows. Replies go to 198.19.x.y: the
 *       namespace must route 198.18.0.0/15 locally (`ip route add local
 *       198.18.0.0/15 dev lo`).
 *   --start I (new, stream): begin the walk at flow I, so that successive
 *       runs create new flows rather than repeat old ones
 *   --sink 0 (new): no receiver here: the destination is in another
 *       namespace (reached over a veth pair), where `flood sink` drains it
 *   flood sink --dst ADDR --port P --max-ms T
 *       only the receiver: bind ADDR:P, print {"mode":"sink","ready":true}
 *       once bound, drain until stdin closes or T ms pass, then print
 *       {"mode":"sink","received":N}
 *
 * Run it inside a network namespace the benchmark created; it refuses
 * destinations outside the benchmark ranges 198.18.0.0/15 and 2001:2::/48.
 * Sends with sendmmsg() in batches so that the syscall is not what is measured.
 * A receiver thread drains the destination socket, as a server would: without
 * it every packet would end in kfree_skb (no socket, or a full buffer), a
 * path real traffic does not take.
 * Prints one JSON line: {"mode":…,"sent":N,"errors":N,"elapsedMs":…,"pps":…}.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/udp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define PAYLOAD 8
#define PORT_SPAN 60000

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static volatile int sink_stop;
static long long sink_received;

/* Drain a UDP socket until told to stop; counts what it read. */
static void *sink(void *arg)
{
	int fd = *(int *)arg;
	char buf[BATCH][64];
	struct iovec iov[BATCH];
	struct mmsghdr m[BATCH];
	struct timeval tv = { .tv_usec = 100000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	memset(m, 0, sizeof(m));
	for (int k = 0; k < BATCH; k++) {
		iov[k].iov_base = buf[k];
		iov[k].iov_len = sizeof(buf[k]);
		m[k].msg_hdr.msg_iov = &iov[k];
		m[k].msg_hdr.msg_iovlen = 1;
	}
	while (!sink_stop) {
		int r = recvmmsg(fd, m, BATCH, 0, NULL);

		if (r > 0)
			sink_received += r;
	}
	return NULL;
}

static void usage(const char *why)
{
	fprintf(stderr, "flood: %s\nhint: flood new|est|stream --dst ADDR --port P --count N --max-ms T, or flood sink --dst ADDR --port P --max-ms T\n", why);
	exit(2);
}

static int in_bench_range(int af, const void *a)
{
	if (af == AF_INET) {
		uint32_t v = ntohl(*(const uint32_t *)a);

		return (v & 0xfffe0000u) == 0xc6120000u; /* 198.18.0.0/15 */
	}
	const uint8_t *b = a;

	return b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 2 && b[4] == 0 && b[5] == 0; /* 2001:2::/48 */
}

static uint16_t csum_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static uint32_t csum_add(uint32_t s, const void *p, size_t n)
{
	const uint16_t *w = p;

	for (; n > 1; n -= 2)
		s += *w++;
	if (n)
		s += *(const uint8_t *)w;
	return s;
}

struct pkt4 {
	struct iphdr ip;
	struct udphdr udp;
	char data[PAYLOAD];
} __attribute__((packed));

struct pkt6 {
	struct ip6_hdr ip;
	struct udphdr udp;
	char data[PAYLOAD];
} __attribute__((packed));

/* Fill packet i of the new-flow walk. */
static void build_new4(struct pkt4 *p, uint32_t dst, uint16_t dport, uint64_t i)
{
	memset(p, 0, sizeof(*p));
	p->ip.version = 4;
	p->ip.ihl = 5;
	p->ip.ttl = 64;
	p->ip.protocol = IPPROTO_UDP;
	p->ip.tot_len = htons(sizeof(*p));
	p->ip.saddr = htonl(0xc6130000u + (uint32_t)((i / PORT_SPAN) & 0xffff)); /* 198.19.x.y */
	p->ip.daddr = dst;
	p->udp.source = htons((uint16_t)(1024 + i % PORT_SPAN));
	p->udp.dest = dport;
	p->udp.len = htons(sizeof(p->udp) + PAYLOAD);
	/* IPv4 UDP checksum 0 means none; the kernel fills the IP header checksum */
}

/* Flow i of the stream walk, in one direction: dst port P + i % K. */
static void build_stream4(struct pkt4 *p, uint32_t dst, uint16_t port, uint32_t ports, uint64_t i, int reply)
{
	build_new4(p, dst, htons((uint16_t)(port + i % ports)), i);
	if (reply) {
		uint32_t a = p->ip.saddr;
		uint16_t sp = p->udp.source;

		p->ip.saddr = p->ip.daddr;
		p->ip.daddr = a;
		p->udp.source = p->udp.dest;
		p->udp.dest = sp;
	}
}

static void build_new6(struct pkt6 *p, const struct in6_addr *dst, uint16_t dport, uint64_t i)
{
	uint32_t s = 0;
	uint32_t len = htonl(sizeof(p->udp) + PAYLOAD);
	uint16_t nh = htons(IPPROTO_UDP);

	memset(p, 0, sizeof(*p));
	p->ip.ip6_flow = htonl(6u << 28);
	p->ip.ip6_plen = htons(sizeof(p->udp) + PAYLOAD);
	p->ip.ip6_nxt = IPPROTO_UDP;
	p->ip.ip6_hlim = 64;
	/* 2001:2:0:1::/64, host part from i */
	p->ip.ip6_src.s6_addr[0] = 0x20;
	p->ip.ip6_src.s6_addr[1] = 0x01;
	p->ip.ip6_src.s6_addr[3] = 0x02;
	p->ip.ip6_src.s6_addr[7] = 0x01;
	uint32_t host = (uint32_t)(i / PORT_SPAN);
	memcpy(&p->ip.ip6_src.s6_addr[12], &host, 4);
	p->ip.ip6_dst = *dst;
	p->udp.source = htons((uint16_t)(1024 + i % PORT_SPAN));
	p->udp.dest = dport;
	p->udp.len = htons(sizeof(p->udp) + PAYLOAD);
	/* IPv6 requires the UDP checksum (pseudo-header + header + payload) */
	s = csum_add(s, &p->ip.ip6_src, 16);
	s = csum_add(s, &p->ip.ip6_dst, 16);
	s = csum_add(s, &len, 4);
	s += nh;
	s = csum_add(s, &p->udp, sizeof(p->udp) + PAYLOAD);
	p->udp.check = csum_fold(s);
	if (!p->udp.check)
		p->udp.check = 0xffff;
}

/* Send packets [0, n) of one stream pass; returns packets sent. */
static long long stream_pass(int fd, uint32_t dst, uint16_t port, uint32_t ports, uint64_t first, long long n, int reply,
			     double deadline, int *timed_out, long long *refused)
{
	struct pkt4 pk[BATCH];
	struct sockaddr_in to[BATCH];
	struct iovec iov[BATCH];
	struct mmsghdr m[BATCH];
	long long done = 0, sent = 0;
	unsigned long batches = 0;

	memset(m, 0, sizeof(m));
	memset(to, 0, sizeof(to));
	while (done < n) {
		int b = (int)(n - done < BATCH ? n - done : BATCH);

		for (int k = 0; k < b; k++) {
			build_stream4(&pk[k], dst, port, ports, first + (uint64_t)(done + k), reply);
			to[k].sin_family = AF_INET;
			to[k].sin_addr.s_addr = pk[k].ip.daddr;
			iov[k].iov_base = &pk[k];
			iov[k].iov_len = sizeof(pk[k]);
			m[k].msg_hdr.msg_iov = &iov[k];
			m[k].msg_hdr.msg_iovlen = 1;
			m[k].msg_hdr.msg_name = &to[k];
			m[k].msg_hdr.msg_namelen = sizeof(to[k]);
		}
		int r = sendmmsg(fd, m, (unsigned)b, 0);

		/* a refused packet (EPERM: conntrack dropped it, the table is
		 * full) is skipped: this walk does not retry */
		done += r > 0 ? r : 1;
		sent += r > 0 ? r : 0;
		*refused += r > 0 ? 0 : 1;
		if ((++batches & 15) == 0 && now_ms() > deadline) {
			*timed_out = 1;
			break;
		}
	}
	return sent;
}

/* The stream mode: request, reply, and after 2 s one more request per flow. */
static int stream4(uint32_t dst, uint16_t port, uint32_t ports, uint64_t start, long long count, long long max_ms, int af)
{
	if (af != AF_INET)
		usage("stream takes an IPv4 --dst");
	int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);

	if (fd < 0) {
		perror("flood: socket");
		return 1;
	}
	double t0 = now_ms(), deadline = t0 + (double)max_ms;
	int timed_out = 0;
	long long refused = 0;
	long long sent = stream_pass(fd, dst, port, ports, start, count, 0, deadline, &timed_out, &refused);

	double created = now_ms();

	if (!timed_out)
		sent += stream_pass(fd, dst, port, ports, start, count, 1, deadline, &timed_out, &refused);
	/* nf_conntrack_proto_udp.c: ASSURED needs a packet after stream_ts,
	 * 2 s after the flow's first packet; every flow began before `created` */
	while (!timed_out && now_ms() < created + 2100) {
		if (now_ms() > deadline)
			timed_out = 1;
		else
			usleep(10000);
	}
	if (!timed_out)
		sent += stream_pass(fd, dst, port, ports, start, count, 0, deadline, &timed_out, &refused);
	double el = now_ms() - t0;

	printf("{\"mode\":\"stream\",\"family\":\"ipv4\",\"flows\":%lld,\"sent\":%lld,\"errors\":%lld,\"elapsedMs\":%.1f,\"pps\":%.0f,\"timedOut\":%s}\n",
	       count, sent, refused, el, sent / (el / 1e3), timed_out ? "true" : "false");
	close(fd);
	return 0;
}

/* The sink mode: a receiver alone, for a sender in another namespace. */
static int sink_only(int af, const struct sockaddr_storage *a, socklen_t alen, long long max_ms)
{
	int fd = socket(af, SOCK_DGRAM, 0), big = 8 << 20;
	pthread_t t;
	struct pollfd pfd = { .fd = 0, .events = POLLIN };
	char b[64];

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big)) || bind(fd, (const void *)a, alen)) {
		perror("flood: bind receiver");
		return 1;
	}
	if (pthread_create(&t, NULL, sink, &fd)) {
		perror("flood: receiver thread");
		return 1;
	}
	printf("{\"mode\":\"sink\",\"ready\":true}\n");
	fflush(stdout);
	/* until stdin closes (the caller is done) or the time bound */
	for (double deadline = now_ms() + (double)max_ms; now_ms() < deadline;) {
		if (poll(&pfd, 1, 100) == 1 && read(0, b, sizeof(b)) <= 0)
			break;
	}
	sink_stop = 1;
	pthread_join(t, NULL);
	printf("{\"mode\":\"sink\",\"received\":%lld}\n", sink_received);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "", *dst_s = NULL;
	long port = -1, ports = 1;
	long long count = -1, max_ms = -1, start = 0, local_sink = 1;
	int af;
	union { struct in_addr v4; struct in6_addr v6; } dst;

	for (int i = 2; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage("every option takes a value");
		if (!strcmp(argv[i], "--dst"))
			dst_s = v;
		else if (!strcmp(argv[i], "--port"))
			port = strtol(v, NULL, 10);
		else if (!strcmp(argv[i], "--count"))
			count = strtoll(v, NULL, 10);
		else if (!strcmp(argv[i], "--max-ms"))
			max_ms = strtoll(v, NULL, 10);
		else if (!strcmp(argv[i], "--ports"))
			ports = strtol(v, NULL, 10);
		else if (!strcmp(argv[i], "--start"))
			start = strtoll(v, NULL, 10);
		else if (!strcmp(argv[i], "--sink"))
			local_sink = strtoll(v, NULL, 10);
		else
			usage("unknown option");
		i++;
	}
	if (strcmp(mode, "new") && strcmp(mode, "est") && strcmp(mode, "stream") && strcmp(mode, "sink"))
		usage("the first argument must be new, est, stream or sink");
	if (!strcmp(mode, "sink"))
		count = 1; /* not used: the sink runs until stdin closes */
	if ((local_sink != 0 && local_sink != 1) || (!local_sink && strcmp(mode, "new")))
		usage("--sink takes 0 or 1, and 0 only with new");
	if (ports < 1 || port + ports - 1 > 65535 || start < 0 || start > 1000000000LL)
		usage("--ports must keep P+K-1 within 65535, --start within 0-1e9");
	if (!dst_s || port < 1 || port > 65535 || count < 1 || count > 100000000LL || max_ms < 1 || max_ms > 600000)
		usage("--dst, --port (1-65535), --count (1-1e8) and --max-ms (1-600000) are required");
	if (inet_pton(AF_INET, dst_s, &dst.v4) == 1)
		af = AF_INET;
	else if (inet_pton(AF_INET6, dst_s, &dst.v6) == 1)
		af = AF_INET6;
	else
		usage("--dst is not an IP address");
	if (!in_bench_range(af, &dst))
		usage("--dst must lie in 198.18.0.0/15 or 2001:2::/48");
	if (!strcmp(mode, "stream"))
		return stream4(dst.v4.s_addr, (uint16_t)port, (uint32_t)ports, (uint64_t)start, count, max_ms, af);

	int fd;
	struct sockaddr_storage to = { 0 };
	socklen_t tolen;
	size_t plen;
	unsigned char *bufs;

	if (af == AF_INET) {
		struct sockaddr_in *s = (void *)&to;

		s->sin_family = AF_INET;
		s->sin_addr = dst.v4;
		tolen = sizeof(*s);
		plen = sizeof(struct pkt4);
	} else {
		struct sockaddr_in6 *s = (void *)&to;

		s->sin6_family = AF_INET6;
		s->sin6_addr = dst.v6;
		tolen = sizeof(*s);
		plen = sizeof(struct pkt6);
	}

	int sink_fd = -1;
	pthread_t sink_thread;

	if (!strcmp(mode, "sink")) {
		if (af == AF_INET)
			((struct sockaddr_in *)&to)->sin_port = htons((uint16_t)port);
		else
			((struct sockaddr_in6 *)&to)->sin6_port = htons((uint16_t)port);
		return sink_only(af, &to, tolen, max_ms);
	}
	if (!strcmp(mode, "new") && !local_sink) {
		fd = socket(af, SOCK_RAW, IPPROTO_RAW);
	} else if (!strcmp(mode, "new")) {
		struct sockaddr_storage a = to;
		int big = 8 << 20;

		/* IPPROTO_RAW implies we write the IP header (IP_HDRINCL) */
		fd = socket(af, SOCK_RAW, IPPROTO_RAW);
		if (af == AF_INET)
			((struct sockaddr_in *)&a)->sin_port = htons((uint16_t)port);
		else
			((struct sockaddr_in6 *)&a)->sin6_port = htons((uint16_t)port);
		sink_fd = socket(af, SOCK_DGRAM, 0);
		setsockopt(sink_fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
		if (sink_fd < 0 || bind(sink_fd, (void *)&a, tolen)) {
			perror("flood: bind receiver");
			return 1;
		}
	} else {
		/* est: a server socket and a connected client socket in this
		 * namespace; one request and one reply make the flow established */
		int srv = socket(af, SOCK_DGRAM, 0);
		struct sockaddr_storage a = to;
		char b[PAYLOAD] = "probe";

		if (af == AF_INET)
			((struct sockaddr_in *)&a)->sin_port = htons((uint16_t)port);
		else
			((struct sockaddr_in6 *)&a)->sin6_port = htons((uint16_t)port);
		if (srv < 0 || bind(srv, (void *)&a, tolen)) {
			perror("flood: bind server");
			return 1;
		}
		fd = socket(af, SOCK_DGRAM, 0);
		if (fd < 0 || connect(fd, (void *)&a, tolen) || send(fd, b, sizeof(b), 0) < 0) {
			perror("flood: connect client");
			return 1;
		}
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		struct pollfd pfd = { .fd = srv, .events = POLLIN };

		if (poll(&pfd, 1, 2000) != 1 || recvfrom(srv, b, sizeof(b), 0, (void *)&from, &fl) < 0 ||
		    sendto(srv, b, sizeof(b), 0, (void *)&from, fl) < 0) {
			perror("flood: establish");
			return 1;
		}
		pfd.fd = fd;
		if (poll(&pfd, 1, 2000) != 1 || recv(fd, b, sizeof(b), 0) < 0) {
			perror("flood: reply");
			return 1;
		}
		sink_fd = srv;
		plen = PAYLOAD;
	}
	if (fd < 0) {
		perror("flood: socket");
		return 1;
	}

	if (sink_fd >= 0 && pthread_create(&sink_thread, NULL, sink, &sink_fd)) {
		perror("flood: receiver thread");
		return 1;
	}
	bufs = calloc(BATCH, plen);
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];

	memset(msgs, 0, sizeof(msgs));
	for (int k = 0; k < BATCH; k++) {
		iov[k].iov_base = bufs + (size_t)k * plen;
		iov[k].iov_len = plen;
		msgs[k].msg_hdr.msg_iov = &iov[k];
		msgs[k].msg_hdr.msg_iovlen = 1;
		if (!strcmp(mode, "new")) {
			msgs[k].msg_hdr.msg_name = &to;
			msgs[k].msg_hdr.msg_namelen = tolen;
		}
	}

	long long sent = 0, errors = 0, i = start;
	double t0 = now_ms(), deadline = t0 + (double)max_ms;
	uint16_t dport = htons((uint16_t)port);
	int timed_out = 0;
	unsigned long batches = 0;

	while (sent + errors < count) {
		int n = (int)(count - sent - errors < BATCH ? count - sent - errors : BATCH);

		if (!strcmp(mode, "new")) {
			for (int k = 0; k < n; k++, i++) {
				uint16_t to = ports > 1 ? htons((uint16_t)(port + i % ports)) : dport;

				if (af == AF_INET)
					build_new4((void *)iov[k].iov_base, dst.v4.s_addr, to, (uint64_t)i);
				else
					build_new6((void *)iov[k].iov_base, &dst.v6, to, (uint64_t)i);
			}
		}
		int r = sendmmsg(fd, msgs, (unsigned)n, 0);

		if (r < 0) {
			/* e.g. EPERM when conntrack drops at LOCAL_OUT (table full):
			 * the batch's first packet is lost, the rest go again */
			errors++;
			if (!strcmp(mode, "new"))
				i -= n - 1;
		} else {
			sent += r;
			if (!strcmp(mode, "new"))
				i -= n - r;
		}
		if ((++batches & 15) == 0 && now_ms() > deadline) {
			timed_out = 1;
			break;
		}
	}
	double el = now_ms() - t0;

	sink_stop = 1;
	if (sink_fd >= 0)
		pthread_join(sink_thread, NULL);

	printf("{\"mode\":\"%s\",\"family\":\"%s\",\"sent\":%lld,\"errors\":%lld,\"elapsedMs\":%.1f,\"pps\":%.0f,\"timedOut\":%s}\n",
	       mode, af == AF_INET ? "ipv4" : "ipv6", sent, errors, el, sent / (el / 1e3), timed_out ? "true" : "false");
	free(bufs);
	return 0;
}
