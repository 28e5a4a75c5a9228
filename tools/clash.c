// SPDX-License-Identifier: GPL-2.0
/*
 * clash: makes conntrack resolve insertion clashes on purpose, for ctop's tests.
 *
 *   clash --dst ADDR --port P --flows N [--sport-base S] [--max-ms T] [--proto udp|tcp]
 *
 * For each of N flows, two threads pinned to CPU 0 and CPU 1 wait at a
 * barrier and then each send the first datagram of the same new UDP flow
 * (two sockets bound with SO_REUSEPORT to one source port, sending to one
 * destination). Both packets create an unconfirmed conntrack entry for the
 * same tuple on different CPUs; the second to reach the confirm step finds
 * the first's entry and the kernel resolves the clash (clash_resolve), or
 * fails the insert (insert_failed). Source ports walk from --sport-base.
 *
 * --proto tcp sends instead the first packet of a new TCP flow, a SYN built
 * by hand on two raw IPPROTO_TCP sockets (the kernel adds the IP header), the
 * same SYN from both CPUs. TCP does not set allow_clash, so when both reach
 * __nf_conntrack_confirm() unconfirmed, nf_ct_resolve_clash() cannot resolve
 * it: the second packet is dropped and the kernel counts drop and
 * insert_failed.
 * Refuses destinations outside 198.18.0.0/15. Prints one JSON line:
 * {"flows":N,"sent":M,"refused":R,"errors":E,"elapsedMs":T}; refused counts
 * sends that failed with EPERM, which is how a local sender learns that
 * netfilter dropped its packet.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in dst;
static unsigned flows, sport_base;
static pthread_barrier_t start_line, done_line;
static long sent[2], errs[2], refused[2];
static int socks[2];
static int tcp_mode;
static unsigned cur_sport;

static int raw_socket(void)
{
	return socket(AF_INET, SOCK_RAW, IPPROTO_TCP);
}

/* The TCP checksum over the IPv4 pseudo-header: the raw socket does not fill it. */
static unsigned short tcp_checksum(const struct tcphdr *th, in_addr_t src, in_addr_t dstaddr)
{
	unsigned long sum = 0;
	const unsigned short *w = (const unsigned short *)th;

	sum += (ntohl(src) >> 16) + (ntohl(src) & 0xffff);
	sum += (ntohl(dstaddr) >> 16) + (ntohl(dstaddr) & 0xffff);
	sum += IPPROTO_TCP + sizeof(*th);
	for (size_t i = 0; i < sizeof(*th) / 2; i++)
		sum += ntohs(w[i]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((unsigned short)~sum);
}

static int send_syn(int fd, unsigned sport)
{
	struct tcphdr th = { 0 };

	th.source = htons(sport);
	th.dest = dst.sin_port;
	th.seq = htonl(sport * 2654435761u);
	th.doff = sizeof(th) / 4;
	th.syn = 1;
	th.window = htons(65535);
	/* source = destination: the destination is a local address in the namespace */
	th.check = tcp_checksum(&th, dst.sin_addr.s_addr, dst.sin_addr.s_addr);
	return sendto(fd, &th, sizeof(th), 0, (struct sockaddr *)&dst, sizeof(dst)) == (ssize_t)sizeof(th) ? 0 : -1;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int bound_socket(unsigned sport)
{
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_port = htons(sport) };
	int one = 1, fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void *sender(void *arg)
{
	long me = (long)arg;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET((int)me, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	for (unsigned i = 0; i < flows; i++) {
		pthread_barrier_wait(&start_line); /* main thread made both sockets */
		if (socks[me] >= 0 && (tcp_mode ? send_syn(socks[me], cur_sport) == 0
				       : sendto(socks[me], "x", 1, 0, (struct sockaddr *)&dst, sizeof(dst)) == 1))
			sent[me]++;
		else if (errno == EPERM) /* a netfilter verdict of NF_DROP on a local packet, e.g. insert_failed */
			refused[me]++;
		else
			errs[me]++;
		pthread_barrier_wait(&done_line);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *addr = NULL;
	unsigned port = 0;
	long max_ms = 60000;
	pthread_t t[2];

	sport_base = 20000;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--dst")) addr = argv[i + 1];
		else if (!strcmp(argv[i], "--port")) port = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--flows")) flows = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--sport-base")) sport_base = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--max-ms")) max_ms = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--proto") && !strcmp(argv[i + 1], "tcp")) tcp_mode = 1;
		else if (!strcmp(argv[i], "--proto") && !strcmp(argv[i + 1], "udp")) tcp_mode = 0;
		else { fprintf(stderr, "clash: unknown argument %s\n", argv[i]); return 2; }
	}
	dst.sin_family = AF_INET;
	dst.sin_port = htons(port);
	if (!addr || inet_pton(AF_INET, addr, &dst.sin_addr) != 1 || !port || !flows || flows > 40000 || sport_base + flows > 65535) {
		fprintf(stderr, "usage: clash --dst 198.18.x.y --port P --flows N (1-40000) [--sport-base S] [--max-ms T] [--proto udp|tcp]\n");
		return 2;
	}
	if ((ntohl(dst.sin_addr.s_addr) & 0xfffe0000) != 0xc6120000) {
		fprintf(stderr, "clash: %s is outside 198.18.0.0/15\n", addr);
		return 2;
	}
	pthread_barrier_init(&start_line, NULL, 3);
	pthread_barrier_init(&done_line, NULL, 3);
	for (long k = 0; k < 2; k++)
		pthread_create(&t[k], NULL, sender, (void *)k);
	long t0 = now_ms();
	unsigned i;
	for (i = 0; i < flows; i++) {
		cur_sport = sport_base + i;
		socks[0] = tcp_mode ? raw_socket() : bound_socket(cur_sport);
		socks[1] = tcp_mode ? raw_socket() : bound_socket(cur_sport);
		if (now_ms() - t0 > max_ms) { /* keep the threads in step to the end, sending nothing */
			if (socks[0] >= 0) close(socks[0]);
			if (socks[1] >= 0) close(socks[1]);
			socks[0] = socks[1] = -1;
		}
		pthread_barrier_wait(&start_line);
		pthread_barrier_wait(&done_line);
		if (socks[0] >= 0) close(socks[0]);
		if (socks[1] >= 0) close(socks[1]);
	}
	for (int k = 0; k < 2; k++)
		pthread_join(t[k], NULL);
	printf("{\"flows\":%u,\"sent\":%ld,\"refused\":%ld,\"errors\":%ld,\"elapsedMs\":%ld}\n", flows, sent[0] + sent[1], refused[0] + refused[1], errs[0] + errs[1], now_ms() - t0);
	return errs[0] + errs[1] ? 1 : 0;
}
