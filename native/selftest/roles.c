// SPDX-License-Identifier: GPL-2.0
/*
 * ctop-selftest roles: the role of each new entry (bpf/ctop.h enum
 * ctop_role), counted by the tier under test, against flows whose role is
 * known by construction. The function tiers read the role from the skb alone
 * (skb_iif, the output device, the input route's local flag), so each path a
 * packet can take to its confirm is exercised, for both families.
 *
 * In a fresh network namespace two TUN devices stand for the rest of the
 * network: a datagram written into tun0 arrives from "another host", and is
 * either delivered to a local socket (server) or routed out of tun1
 * (forward); a local socket sending out of tun1 is a client; one sending to
 * the namespace's own address goes through loopback (local).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_tun.h>
#include "check.h"
#include "lab.h"
#include "selftest.h"

#define FLOWS 5 /* per role and family */
#define PORT4 7400 /* + role: server 7400, client 7401, local 7402, forward 7403 */
#define PORT6 7410 /* the same for IPv6 */
#define SPORT 30000

/* the lab's addresses (198.18.0.0/15, 2001:2::/48): tun0 is "the link to
 * the peer", tun1 "the link to the far network" */
static const char *const TUN0_4 = "198.18.0.1", *const PEER_4 = "198.18.0.2";
static const char *const TUN1_4 = "198.19.0.1", *const FAR_4 = "198.19.0.9";
static const char *const TUN0_6 = "2001:2::1", *const PEER_6 = "2001:2::2";
static const char *const TUN1_6 = "2001:2:1::1", *const FAR_6 = "2001:2:1::9";

/* linux/ipv6.h's struct in6_ifreq, which clashes with netinet/in.h */
struct ctop_in6_ifreq {
	struct in6_addr addr;
	uint32_t prefixlen;
	int ifindex;
};

static int tun_open(const char *name)
{
	struct ifreq ifr = { 0 };
	int fd = open("/dev/net/tun", O_RDWR);

	if (fd < 0)
		die("cannot open /dev/net/tun");
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		die("cannot create a TUN device");
	return fd;
}

/* Bring the device up with one address per family. TUN devices are NOARP,
 * so IPv6 skips duplicate address detection (waited for below anyway). */
static void if_config(const char *dev, const char *a4, const char *a6)
{
	int s4 = socket(AF_INET, SOCK_DGRAM, 0), s6 = socket(AF_INET6, SOCK_DGRAM, 0);
	struct ifreq ifr = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	struct ctop_in6_ifreq r6 = { .prefixlen = 64 };

	if (s4 < 0 || s6 < 0)
		die("cannot open a configuration socket");
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
	if (ioctl(s4, SIOCGIFFLAGS, &ifr) < 0)
		die("cannot read the TUN device's flags");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s4, SIOCSIFFLAGS, &ifr) < 0)
		die("cannot bring the TUN device up");
	memset(&ifr.ifr_addr, 0, sizeof(ifr.ifr_addr));
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, a4, &sin->sin_addr);
	if (ioctl(s4, SIOCSIFADDR, &ifr) < 0)
		die("cannot set an IPv4 address");
	inet_pton(AF_INET, "255.255.255.0", &sin->sin_addr);
	if (ioctl(s4, SIOCSIFNETMASK, &ifr) < 0)
		die("cannot set an IPv4 netmask");
	r6.ifindex = (int)if_nametoindex(dev);
	inet_pton(AF_INET6, a6, &r6.addr);
	if (ioctl(s6, SIOCSIFADDR, &r6) < 0)
		die("cannot set an IPv6 address");
	close(s4);
	close(s6);
}

/* Wait (at most 3 s) until no IPv6 address here is tentative: the local
 * route of an address exists only once it is usable. */
static void wait_ipv6_ready(void)
{
	for (int i = 0; i < 300; i++) {
		FILE *f = fopen("/proc/net/if_inet6", "r");
		char line[256];
		int tentative = 0, n = 0;

		if (!f)
			die("cannot read /proc/net/if_inet6");
		while (fgets(line, sizeof(line), f)) {
			unsigned idx, plen, scope, flags;

			if (sscanf(line, "%*32s %x %x %x %x", &idx, &plen, &scope, &flags) == 4) {
				n++;
				tentative |= (flags & 0x40) != 0; /* IFA_F_TENTATIVE */
			}
		}
		fclose(f);
		if (n >= 3 && !tentative) /* ::1 and the two TUN addresses */
			return;
		usleep(10000);
	}
	errno = ETIMEDOUT;
	die("the IPv6 addresses stayed tentative");
}

static uint32_t csum_add(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* One UDP datagram from src:sport to dst:dport, as it arrives on tun0. */
static void tun_send(int fd, int af, const char *src, const char *dst, int sport, int dport)
{
	uint8_t pkt[64] = { 0 }, *udp;
	size_t l3;
	uint16_t c;

	if (af == AF_INET) {
		l3 = 20;
		pkt[0] = 0x45;
		pkt[3] = (uint8_t)(l3 + 9); /* total length: header, UDP header, 1 byte */
		pkt[8] = 64;
		pkt[9] = IPPROTO_UDP;
		inet_pton(AF_INET, src, pkt + 12);
		inet_pton(AF_INET, dst, pkt + 16);
		c = csum_fold(csum_add(0, pkt, 20));
		pkt[10] = (uint8_t)(c >> 8);
		pkt[11] = (uint8_t)c;
	} else {
		l3 = 40;
		pkt[0] = 0x60;
		pkt[5] = 9; /* payload length */
		pkt[6] = IPPROTO_UDP;
		pkt[7] = 64;
		inet_pton(AF_INET6, src, pkt + 8);
		inet_pton(AF_INET6, dst, pkt + 24);
	}
	udp = pkt + l3;
	udp[0] = (uint8_t)(sport >> 8);
	udp[1] = (uint8_t)sport;
	udp[2] = (uint8_t)(dport >> 8);
	udp[3] = (uint8_t)dport;
	udp[5] = 9;
	udp[8] = 'x';
	if (af == AF_INET6) {
		/* mandatory over IPv6; conntrack drops a bad one as invalid */
		uint8_t pseudo[8] = { 0, 0, 0, 9, 0, 0, 0, IPPROTO_UDP };
		uint32_t sum = csum_add(0, pkt + 8, 32);

		sum = csum_add(sum, pseudo, sizeof(pseudo));
		c = csum_fold(csum_add(sum, udp, 9));
		udp[6] = (uint8_t)(c >> 8);
		udp[7] = (uint8_t)c;
	}
	if (write(fd, pkt, l3 + 9) != (ssize_t)(l3 + 9))
		die("cannot write a packet into the TUN device");
}

/* The address (NULL: any) and port as a socket address of family af; its
 * length. sin_port and sin6_port share their offset. */
static socklen_t sockaddr_of(int af, const char *addr, int port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *a4 = (void *)ss;
	struct sockaddr_in6 *a6 = (void *)ss;

	memset(ss, 0, sizeof(*ss));
	ss->ss_family = (sa_family_t)af;
	a4->sin_port = htons((uint16_t)port);
	if (addr)
		inet_pton(af, addr, af == AF_INET ? (void *)&a4->sin_addr : (void *)&a6->sin6_addr);
	return af == AF_INET ? sizeof(*a4) : sizeof(*a6);
}

/* One datagram from a local socket, from a source port not used before. */
static void sock_send(int af, const char *dst, int dport)
{
	static int sport = SPORT + 1000;
	struct sockaddr_storage me, to;
	socklen_t len = sockaddr_of(af, NULL, sport++, &me);
	int s = socket(af, SOCK_DGRAM, 0);

	sockaddr_of(af, dst, dport, &to);
	if (s < 0 || bind(s, (struct sockaddr *)&me, len) < 0 || sendto(s, "x", 1, 0, (struct sockaddr *)&to, len) != 1)
		die("cannot send a datagram from a local socket");
	close(s);
}

/* A receiver on the server and local ports: delivered datagrams find a
 * socket, so no ICMP error is sent back. */
static int udp_listen(int af, int port)
{
	struct sockaddr_storage a;
	socklen_t len = sockaddr_of(af, NULL, port, &a);
	int s = socket(af, SOCK_DGRAM, 0), one = 1;

	if (af == AF_INET6)
		setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (s < 0 || bind(s, (struct sockaddr *)&a, len) < 0)
		die("cannot bind a UDP receiver");
	return s;
}

static const char *const ROLE_NAMES[CTOP_ROLE_COUNT] = { "server", "client", "local", "forward" };

int roles_scenario(int tier, const char *nft)
{
	struct ctop_netns *ns = NULL;
	struct ctop_probe *p;
	struct ctop_err e = { 0 };
	struct ctop_port_rec *ports = NULL;
	uint64_t totals[CTOP_TOTAL_COUNT];
	size_t nports = 0;
	int tun0, tun1, rx[4];

	if (unshare(CLONE_NEWNET) < 0)
		die("cannot create a network namespace");
	if (lo_up() < 0)
		die("cannot bring lo up");
	/* this namespace routes between its two links, and checks no source */
	if (write_file("/proc/sys/net/ipv4/ip_forward", "1") < 0 ||
	    write_file("/proc/sys/net/ipv6/conf/all/forwarding", "1") < 0 ||
	    write_file("/proc/sys/net/ipv4/conf/all/rp_filter", "0") < 0 ||
	    write_file("/proc/sys/net/ipv4/conf/default/rp_filter", "0") < 0)
		die("cannot turn forwarding on in the namespace");
	tun0 = tun_open("tun0");
	tun1 = tun_open("tun1");
	if_config("tun0", TUN0_4, TUN0_6);
	if_config("tun1", TUN1_4, TUN1_6);
	wait_ipv6_ready();
	p = attach_here(tier, nft, "inet", &ns);
	if (!p)
		return 1;
	rx[0] = udp_listen(AF_INET, PORT4 + CTOP_ROLE_SERVER);
	rx[1] = udp_listen(AF_INET, PORT4 + CTOP_ROLE_LOCAL);
	rx[2] = udp_listen(AF_INET6, PORT6 + CTOP_ROLE_SERVER);
	rx[3] = udp_listen(AF_INET6, PORT6 + CTOP_ROLE_LOCAL);

	for (int i = 0; i < FLOWS; i++) {
		/* from the peer, to this namespace's address on tun0 */
		tun_send(tun0, AF_INET, PEER_4, TUN0_4, SPORT + i, PORT4 + CTOP_ROLE_SERVER);
		tun_send(tun0, AF_INET6, PEER_6, TUN0_6, SPORT + i, PORT6 + CTOP_ROLE_SERVER);
		/* from the peer, to the far network behind tun1 */
		tun_send(tun0, AF_INET, PEER_4, FAR_4, SPORT + i, PORT4 + CTOP_ROLE_FORWARD);
		tun_send(tun0, AF_INET6, PEER_6, FAR_6, SPORT + i, PORT6 + CTOP_ROLE_FORWARD);
		/* from here, to the far network */
		sock_send(AF_INET, FAR_4, PORT4 + CTOP_ROLE_CLIENT);
		sock_send(AF_INET6, FAR_6, PORT6 + CTOP_ROLE_CLIENT);
		/* from here, to here */
		sock_send(AF_INET, TUN0_4, PORT4 + CTOP_ROLE_LOCAL);
		sock_send(AF_INET6, TUN0_6, PORT6 + CTOP_ROLE_LOCAL);
	}
	/* a datagram written into a TUN device is received in softirq context
	 * shortly after write() returns: give the last ones time to land */
	{
		uint64_t want = 8 * FLOWS;

		for (int i = 0; i < 300; i++) {
			if (ctop_probe_read_totals(p, totals, &e)) {
				errno = e.err;
				die(e.msg);
			}
			if (totals[CTOP_TOTAL_INSERTS] >= want)
				break;
			usleep(10000);
		}
	}
	if (ctop_probe_read_totals(p, totals, &e) || ctop_probe_read_ports(p, &ports, &nports, &e)) {
		errno = e.err;
		die(e.msg);
	}
	check("inserts total", (long long)totals[CTOP_TOTAL_INSERTS], 8 * FLOWS);
	for (int fam = 0; fam < 2; fam++) {
		for (int role = 0; role < CTOP_ROLE_COUNT; role++) {
			int port = (fam ? PORT6 : PORT4) + role;
			const struct ctop_port_rec *r = NULL;
			char name[96];

			for (size_t i = 0; i < nports; i++)
				if (ports[i].key.port == port && ports[i].key.proto == IPPROTO_UDP &&
				    ports[i].key.family == (fam ? AF_INET6 : AF_INET))
					r = &ports[i];
			for (int got = 0; got < CTOP_ROLE_COUNT; got++) {
				snprintf(name, sizeof(name), "%s flows on %s/%d counted as %s", ROLE_NAMES[role],
					 fam ? "ipv6" : "ipv4", port, ROLE_NAMES[got]);
				check(name, r ? (long long)r->counts.inserts_by_role[got] : -1, got == role ? FLOWS : 0);
			}
		}
	}
	check("map overflows", (long long)totals[CTOP_TOTAL_PORT_OVERFLOW], 0);
	print_checks();
	free(ports);
	ctop_probe_destroy(p);
	ctop_netns_close(ns);
	for (int i = 0; i < 4; i++)
		close(rx[i]);
	close(tun0);
	close(tun1);
	return failures ? 1 : 0;
}
