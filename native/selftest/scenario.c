// SPDX-License-Identifier: GPL-2.0
/*
 * ctop-selftest scenario --tier T: in a fresh network namespace, with
 * nf_conntrack_max lowered (global; the old value is put back at exit), send
 * known loopback traffic that inserts, evicts and refuses a known number of
 * entries, then check every count of the tier against that traffic and
 * against the kernel's own statistics (ctnetlink).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"
#include "lab.h"
#include "selftest.h"

/*
 * The known traffic. Half the table is filled with assured TCP connections
 * (never evicted), half with unreplied UDP flows (evictable). Then new UDP
 * flows go into the full table: early_drop() scans 8 hash buckets from the
 * new flow's (of at least 512, a seeded hash), so each flow either evicts
 * unassured entries there and gets in, or is refused. Which one happened is
 * known per flow (a refused datagram fails sendto with EPERM), so every count
 * has an exact expected value; the kernel's statistics and its table (read
 * from /proc/net/nf_conntrack) must agree too.
 */
#define TABLE_MAX 32
#define TCP_PORT 7100      /* assured entries: never evicted */
#define UDP_FILL_PORT 7200 /* unreplied UDP: evictable */
#define UDP_NEW_PORT 7300  /* flows into the full table */
#define MIN_EACH 4         /* stop once this many flows got in and were refused */
#define MAX_NEW_FLOWS 1024 /* bound on the flows sent into the full table */

static char saved_max[32];
/* nf_conntrack_max opened in the initial namespace: it is writable only
 * there, and the restore runs after unshare() left it */
static int max_fd = -1;

static struct sockaddr_in lo_addr(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static int udp_bound(int port)
{
	struct sockaddr_in a = lo_addr(port);
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("cannot bind a UDP receiver");
	return s;
}

/* One new UDP flow from a source port never used before in this run (an
 * ephemeral port could repeat, and a repeated tuple is no new flow). Returns
 * the source port; *sent says whether the kernel let the datagram out (a
 * conntrack drop on LOCAL_OUT fails sendto with EPERM). */
static int udp_flow(int port, int *sent)
{
	static int next_sport = 20000;
	struct sockaddr_in a = lo_addr(port), me = lo_addr(next_sport++);
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	if (s < 0 || bind(s, (struct sockaddr *)&me, sizeof(me)) < 0)
		die("cannot open a UDP sender");
	*sent = sendto(s, "x", 1, 0, (struct sockaddr *)&a, sizeof(a)) == 1;
	close(s);
	return ntohs(me.sin_port);
}

/* One TCP connection, accepted and kept open: conntrack marks it assured
 * once the handshake's last ACK passed, before accept() returns. */
static void tcp_conn(int listener, int *fds, int *nfds)
{
	struct sockaddr_in a = lo_addr(TCP_PORT);
	int c = socket(AF_INET, SOCK_STREAM, 0), s;

	if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("cannot connect to the TCP listener");
	s = accept(listener, NULL, NULL);
	if (s < 0)
		die("cannot accept");
	fds[(*nfds)++] = c;
	fds[(*nfds)++] = s;
}

struct kstats {
	uint64_t drop, early_drop, insert_failed, clash_resolve;
	uint32_t count;
};

static void read_kstats(struct ctop_netns *ns, struct kstats *k)
{
	static struct ctop_ct_cpu_stat cpus[CTOP_MAX_CPUS];
	struct ctop_err e = { 0 };
	uint32_t max = 0;
	int n = 0;

	memset(k, 0, sizeof(*k));
	if (ctop_netns_cpu_stats(ns, cpus, CTOP_MAX_CPUS, &n, &e) || ctop_netns_table(ns, &k->count, &max, &e)) {
		errno = e.err;
		die(e.msg);
	}
	for (int i = 0; i < n; i++) {
		k->drop += cpus[i].drop;
		k->early_drop += cpus[i].early_drop;
		k->insert_failed += cpus[i].insert_failed;
		k->clash_resolve += cpus[i].clash_resolve;
	}
}

static const struct ctop_event_rec *find_events(const struct ctop_event_rec *r, size_t n, int port)
{
	for (size_t i = 0; i < n; i++)
		if (r[i].key.port == port && r[i].key.proto == (port == TCP_PORT ? IPPROTO_TCP : IPPROTO_UDP) && r[i].key.family == AF_INET)
			return &r[i];
	return NULL;
}

static const struct ctop_port_rec *find_port(const struct ctop_port_rec *r, size_t n, int port)
{
	for (size_t i = 0; i < n; i++)
		if (r[i].key.port == port && r[i].key.proto == (port == TCP_PORT ? IPPROTO_TCP : IPPROTO_UDP) && r[i].key.family == AF_INET)
			return &r[i];
	return NULL;
}

/* Is (sport -> dport) a UDP tuple on loopback in recs with the given count? */
static int tuple_count(const struct ctop_tuple_rec *r, size_t n, int sport, int dport, int drops)
{
	static const uint8_t lo[4] = { 127, 0, 0, 1 };

	for (size_t i = 0; i < n; i++)
		if (r[i].key.proto == IPPROTO_UDP && r[i].key.sport == sport && r[i].key.dport == dport &&
		    !memcmp(r[i].key.saddr, lo, 4) && !memcmp(r[i].key.daddr, lo, 4))
			return (int)(drops ? r[i].counts.drops : r[i].counts.inserts);
	return 0;
}

static void restore_max(void)
{
	if (max_fd < 0)
		return;
	if (pwrite(max_fd, saved_max, strlen(saved_max), 0) < 0)
		fprintf(stderr, "ctop-selftest: could not restore nf_conntrack_max to %s: %s\n", saved_max, strerror(errno));
	close(max_fd);
	max_fd = -1;
}

/* a timeout's SIGTERM must not leave the table at TABLE_MAX */
static void exit_on_signal(int sig)
{
	(void)sig;
	exit(3); /* runs restore_max */
}

/* Entries in this namespace's table per destination port (original
 * direction), as the kernel lists them. */
static int census(int port)
{
	FILE *f = fopen("/proc/net/nf_conntrack", "r");
	char line[512], want[32];
	int n = 0;

	if (!f)
		die("cannot read /proc/net/nf_conntrack");
	snprintf(want, sizeof(want), " dport=%d ", port);
	while (fgets(line, sizeof(line), f)) {
		char *first = strstr(line, " dport=");

		if (first && !strncmp(first, want, strlen(want)))
			n++;
	}
	fclose(f);
	return n;
}

int scenario(int tier, const char *nft)
{
	static int fds[4 * TABLE_MAX], in_sports[MAX_NEW_FLOWS], out_sports[MAX_NEW_FLOWS];
	int nfds = 0, fill_sports[TABLE_MAX / 2], sent, n_in = 0, n_out = 0, fill_lost = 0;
	struct ctop_netns *ns = NULL;
	struct ctop_probe *p;
	struct ctop_err e = { 0 };
	struct kstats k0, k1;
	struct stat st;
	char val[32];
	int listener, rx[2];

	/* Global sysctl, writable from the initial namespace only: first, and
	 * put back at exit (on a shared host other tests need the old value). */
	{
		FILE *f = fopen("/proc/sys/net/netfilter/nf_conntrack_max", "r");

		if (!f || !fgets(saved_max, sizeof(saved_max), f))
			die("cannot read nf_conntrack_max");
		fclose(f);
		max_fd = open("/proc/sys/net/netfilter/nf_conntrack_max", O_WRONLY);
		if (max_fd < 0)
			die("cannot open nf_conntrack_max for writing");
		atexit(restore_max);
		signal(SIGTERM, exit_on_signal);
		signal(SIGINT, exit_on_signal);
		signal(SIGHUP, exit_on_signal);
	}
	snprintf(val, sizeof(val), "%d", TABLE_MAX);
	if (pwrite(max_fd, val, strlen(val), 0) < 0)
		die("cannot write nf_conntrack_max");
	/* A fresh namespace: an empty table, and counts filtered to it. */
	if (unshare(CLONE_NEWNET) < 0)
		die("cannot create a network namespace");
	if (lo_up() < 0)
		die("cannot bring lo up");
	/* Per namespace: no entry may time out during the run, so that every
	 * deletion is an eviction. */
	if (write_file("/proc/sys/net/netfilter/nf_conntrack_udp_timeout", "600") < 0)
		die("cannot write nf_conntrack_udp_timeout");
	if (stat("/proc/self/ns/net", &st) < 0) /* its inode seeds the drop baseline below */
		die("cannot stat /proc/self/ns/net");
	p = attach_here(tier, nft, "ip", &ns);
	if (!p)
		return 1;
	read_kstats(ns, &k0);
	if (tier == CTOP_TIER_NETFILTER && ctop_netns_links(ns) == 0)
		die("no netfilter link in the namespace");
	watch_drops(p, ns);

	/* 1: half the table with assured TCP entries */
	{
		struct sockaddr_in a = lo_addr(TCP_PORT);

		listener = socket(AF_INET, SOCK_STREAM, 0);
		if (listener < 0 || bind(listener, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(listener, 64) < 0)
			die("cannot listen");
	}
	rx[0] = udp_bound(UDP_FILL_PORT);
	rx[1] = udp_bound(UDP_NEW_PORT);
	for (int i = 0; i < TABLE_MAX / 2; i++)
		tcp_conn(listener, fds, &nfds);
	/* 2: the other half with evictable UDP flows: the table is full */
	for (int i = 0; i < TABLE_MAX / 2; i++) {
		fill_sports[i] = udp_flow(UDP_FILL_PORT, &sent);
		fill_lost += !sent;
	}
	/* 3: new UDP flows into the full table, until enough got in (each by
	 * evicting) and enough were refused */
	/* The netfilter tier does not see evictions, and where the hash has
	 * many buckets (the host's: 262144) early_drop() rarely finds a victim
	 * among 32 entries: there, refusals only. */
	const int need_in = tier == CTOP_TIER_NETFILTER ? 0 : MIN_EACH;

	for (int i = 0; i < MAX_NEW_FLOWS && (n_in < need_in || n_out < MIN_EACH); i++) {
		int sport = udp_flow(UDP_NEW_PORT, &sent);

		if (sent)
			in_sports[n_in++] = sport;
		else
			out_sports[n_out++] = sport;
	}
	read_kstats(ns, &k1);

	/* ---- compare ---- */
	uint64_t totals[CTOP_TOTAL_COUNT];
	struct ctop_port_rec *ports = NULL;
	struct ctop_event_rec *ev = NULL;
	const struct ctop_tuple_rec *tuples = NULL;
	size_t nports = 0, nev = 0, ntuples = 0, ntdrops = 0;

	/* the first read of the tuple deltas: everything since load, the insert
	 * and drop maps joined, as the product reads them */
	if (ctop_probe_read_totals(p, totals, &e) || ctop_probe_read_ports(p, &ports, &nports, &e) ||
	    ctop_probe_read_events(p, &ev, &nev, &e) || ctop_probe_read_tuple_deltas(p, &tuples, &ntuples, &e)) {
		errno = e.err;
		die(e.msg);
	}
	for (size_t i = 0; i < ntuples; i++)
		ntdrops += tuples[i].counts.drops > 0;
	const long long tcp_n = TABLE_MAX / 2, fill_n = TABLE_MAX / 2;
	const long long kdrop = (long long)(k1.drop - k0.drop), kearly = (long long)(k1.early_drop - k0.early_drop);
	const long long live_fill = census(UDP_FILL_PORT), live_new = census(UDP_NEW_PORT);
	const struct ctop_port_rec *pt = find_port(ports, nports, TCP_PORT), *pf = find_port(ports, nports, UDP_FILL_PORT),
				   *pn = find_port(ports, nports, UDP_NEW_PORT);
	const struct ctop_event_rec *et = find_events(ev, nev, TCP_PORT), *ef = find_events(ev, nev, UDP_FILL_PORT),
				    *en = find_events(ev, nev, UDP_NEW_PORT);

	jappend("{\"name\":\"traffic: flows into the full table that got in / were refused\",\"in\":%d,\"refused\":%d}",
		n_in, n_out);
	/* the traffic went as planned */
	check("traffic: fill datagrams refused before the table was full", fill_lost, 0);
	check("traffic: new flows that got in (at least)", n_in >= need_in, 1);
	check("traffic: new flows refused (at least)", n_out >= MIN_EACH, 1);
	/* the kernel agrees with the traffic */
	check("kernel: drop statistic = refused flows", kdrop, n_out);
	check("kernel: nf_conntrack_count = table max", k1.count, TABLE_MAX);
	check("kernel: tcp entries listed", census(TCP_PORT), tcp_n);
	check("kernel: every eviction made room for a flow that got in", fill_n + n_in - (live_fill + live_new) <= kearly, 1);
	/* inserts, exactly */
	check("inserts total", (long long)totals[CTOP_TOTAL_INSERTS], tcp_n + fill_n + n_in);
	check("inserts tcp/7100", pt ? (long long)ctop_counts_inserts(&pt->counts) : -1, tcp_n);
	check("inserts udp/7200", pf ? (long long)ctop_counts_inserts(&pf->counts) : -1, fill_n);
	check("inserts udp/7300", pn ? (long long)ctop_counts_inserts(&pn->counts) : -1, n_in);
	{
		int found = 0, want = 0;

		for (int i = 0; i < TABLE_MAX / 2; i++)
			found += tuple_count(tuples, ntuples, fill_sports[i], UDP_FILL_PORT, 0) == 1;
		for (int i = 0; i < n_in; i++)
			found += tuple_count(tuples, ntuples, in_sports[i], UDP_NEW_PORT, 0) == 1;
		want = TABLE_MAX / 2 + n_in;
		check("insert tuples udp (each flow that got in, once)", found, want);
	}
	/* roles: the scenario talks over loopback inside one namespace, so every
	 * insert is local, and each port's roles add up to its inserts */
	{
		long long local = 0, other = 0, sum_all = 0;

		for (size_t i = 0; i < nports; i++) {
			const __u64 *r = ports[i].counts.inserts_by_role;

			local += (long long)r[CTOP_ROLE_LOCAL];
			other += (long long)(r[CTOP_ROLE_SERVER] + r[CTOP_ROLE_CLIENT] + r[CTOP_ROLE_FORWARD]);
			sum_all += (long long)ctop_counts_inserts(&ports[i].counts);
		}
		check("roles: local inserts (loopback traffic)", local, tcp_n + fill_n + n_in);
		check("roles: server, client or forward inserts", other, 0);
		check("roles: per-port roles summed = inserts total", sum_all, (long long)totals[CTOP_TOTAL_INSERTS]);
	}
	/* table-full refusals, with their tuples */
	check("drops total = refused flows", (long long)totals[CTOP_TOTAL_DROPS], n_out);
	check("drops udp/7300", pn ? (long long)pn->counts.drops : -1, n_out);
	check("drops tcp/7100", pt ? (long long)pt->counts.drops : -1, 0);
	{
		int found = 0;

		for (int i = 0; i < n_out; i++)
			found += tuple_count(tuples, ntuples, out_sports[i], UDP_NEW_PORT, 1) == 1;
		check("drop tuples udp/7300 (each refused flow, once)", found, n_out);
		check("drop tuples of flows that got in", (long long)ntdrops - found, 0);
	}
	/* tp_btf/kfree_skb (the netfilter tier; the function tiers unless
	 * --drops alloc): every refusal's packet parsed, and no other
	 * netfilter drop in this run */
	check("drops whose headers could not be read", (long long)totals[CTOP_TOTAL_DROP_UNPARSED], 0);
	check("netfilter drops that were not conntrack's", (long long)totals[CTOP_TOTAL_OTHER_NF_DROPS], 0);
	if (tier == CTOP_TIER_NETFILTER) {
		const char *t = ctop_tier_name(tier);

		not_counted("early drops", t);
		not_counted("deletes", t);
		not_counted("entries per port", t);
		not_counted("insert_failed", t);
		not_counted("clashes", t);
		check("map overflows", (long long)(totals[CTOP_TOTAL_PORT_OVERFLOW] + totals[CTOP_TOTAL_TUPLE_OVERFLOW] +
						    totals[CTOP_TOTAL_DROP_TUPLE_OVERFLOW]), 0);
		goto done;
	}
	/* early drops: = the kernel's statistic; per port they are the UDP
	 * entries no longer in the table (nothing else deletes in this run) */
	check("early drops total = kernel early_drop statistic", (long long)totals[CTOP_TOTAL_EARLY_DROPS], kearly);
	check("early drops udp/7200", ef ? (long long)ef->events.early_drops : 0, fill_n - live_fill);
	check("early drops udp/7300", en ? (long long)en->events.early_drops : 0, n_in - live_new);
	check("early drops tcp/7100", et ? (long long)et->events.early_drops : -1, 0);
	/* deletions and occupancy, per port, against the kernel's table */
	check("deletes total", (long long)totals[CTOP_TOTAL_DELETES], kearly);
	check("deletes udp/7200", ef ? (long long)ef->events.deletes : 0, fill_n - live_fill);
	check("deletes udp/7300", en ? (long long)en->events.deletes : 0, n_in - live_new);
	check("entries tcp/7100 = listed", et ? (long long)et->events.entries : -1, census(TCP_PORT));
	check("entries udp/7200 = listed", ef ? (long long)ef->events.entries : -1, live_fill);
	check("entries udp/7300 = listed", en ? (long long)en->events.entries : -1, live_new);
	{
		long long sum = 0;

		for (size_t i = 0; i < nev; i++)
			sum += (long long)ev[i].events.entries;
		check("entries summed over ports = nf_conntrack_count", sum, k1.count);
	}
	/* no races in a single-threaded run: both must be 0, like the kernel's */
	check("insert_failed = kernel insert_failed", (long long)totals[CTOP_TOTAL_INSERT_FAILED],
	      (long long)(k1.insert_failed - k0.insert_failed));
	check("clashes = kernel clash_resolve", (long long)totals[CTOP_TOTAL_CLASHES],
	      (long long)(k1.clash_resolve - k0.clash_resolve));
	check("map overflows", (long long)(totals[CTOP_TOTAL_PORT_OVERFLOW] + totals[CTOP_TOTAL_TUPLE_OVERFLOW] +
					    totals[CTOP_TOTAL_DROP_TUPLE_OVERFLOW] + totals[CTOP_TOTAL_EVENTS_OVERFLOW]), 0);

done:
	print_checks();
	free(ports);
	free(ev);
	ctop_probe_destroy(p);
	ctop_netns_close(ns);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	close(listener);
	for (int i = 0; i < 2; i++)
		close(rx[i]);
	return failures ? 1 : 0;
}
