// SPDX-License-Identifier: GPL-2.0
/*
 * ctop-selftest: the product's own loader (native/core) and BPF programs,
 * without Node, for kernels ctop is tested on in a VM (test/matrix).
 *
 *   ctop-selftest probe [--tier auto|fentry|kprobe|netfilter]
 *       Load the best tier the kernel takes (or the one named), in the
 *       loader's fallback order, and print which one and why each better one
 *       was refused (the kernel's error), as one JSON line.
 *
 *   ctop-selftest hold --tier fentry|kprobe|netfilter [--floor]
 *       Load and attach the tier (or empty programs at the same places),
 *       print one JSON line, and keep it attached until stdin closes; then
 *       print the totals and the programs' run statistics (hold.c; for
 *       bench/, which measures what a tier costs the traffic).
 *
 *   ctop-selftest scenario --tier fentry|kprobe|netfilter [--nft PATH]
 *       In a fresh network namespace, with nf_conntrack_max lowered (global;
 *       the old value is put back at exit), send known loopback
 *       traffic that inserts, evicts and refuses a known number of entries,
 *       then check every count of the tier against that traffic and against
 *       the kernel's own statistics (ctnetlink). One JSON line; exit 1 on any
 *       mismatch. The netfilter tier counts inserts and drops only: the
 *       eviction, deletion and occupancy checks are listed as not applicable.
 *
 *   ctop-selftest roles --tier fentry|kprobe|netfilter [--nft PATH]
 *       In a fresh network namespace, new flows of each role (server,
 *       client, local, forward; IPv4 and IPv6) through TUN devices and
 *       loopback, then check each port's role counts exactly (roles.c).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
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

int failures;
static char saved_max[32];
/* nf_conntrack_max opened in the initial namespace: it is writable only
 * there, and the restore runs after unshare() left it */
static int max_fd = -1;
/* --max-tuples: the per-tuple insert map's size (0: the loader's default) */
static uint32_t max_tuples;
char checks[16384];
size_t checks_len;

void jappend(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (checks_len < sizeof(checks))
		checks_len += (size_t)vsnprintf(checks + checks_len, sizeof(checks) - checks_len, fmt, ap);
	va_end(ap);
	if (checks_len > sizeof(checks))
		checks_len = sizeof(checks);
}

/* A check the tier cannot make, listed as such (never a silent pass). */
static void not_counted(const char *name, const char *tier)
{
	jappend("%s{\"name\":\"%s\",\"notCountedBy\":\"%s\"}", checks_len ? "," : "", name, tier);
}

/* One named comparison, recorded in the JSON either way. */
void check(const char *name, long long got, long long want)
{
	jappend("%s{\"name\":\"%s\",\"got\":%lld,\"want\":%lld,\"ok\":%s}", checks_len ? "," : "", name, got, want,
		got == want ? "true" : "false");
	if (got != want) {
		failures++;
		fprintf(stderr, "ctop-selftest: MISMATCH %s: got %lld, want %lld\n", name, got, want);
	}
}

void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static int parse_tier(const char *s)
{
	if (!strcmp(s, "auto"))
		return -1;
	for (int t = CTOP_TIER_FENTRY; t <= CTOP_TIER_NETFILTER; t++)
		if (!strcmp(s, ctop_tier_name(t)))
			return t;
	fprintf(stderr, "ctop-selftest: unknown tier '%s' (hint: auto, fentry, kprobe or netfilter)\n", s);
	exit(2);
}

/*
 * The loader's fallback: each tier from `first` down to netfilter, the first
 * that loads (and, for function tiers, attaches) wins. `only` >= 0 tries just
 * that one. Prints the "tier" and "refused" JSON members.
 */
struct ctop_probe *load_tier(int only, uint32_t netns, FILE *out)
{
	struct ctop_probe *p = NULL;
	int first = only >= 0 ? only : CTOP_TIER_FENTRY, last = only >= 0 ? only : CTOP_TIER_NETFILTER;
	int nref = 0;

	fprintf(out, "\"refused\":[");
	for (int t = first; t <= last; t++) {
		struct ctop_probe_opts o = { .target_netns = netns, .tier = t, .max_tuples = max_tuples };
		struct ctop_err e = { 0 };

		if (ctop_probe_open_load(&o, &p, &e) == 0)
			break;
		p = NULL;
		{
			/* libbpf's own words (the verifier log's end) for whoever reads stderr */
			const char *log = ctop_libbpf_log();
			size_t len = strlen(log);

			fprintf(stderr, "ctop-selftest: tier %s refused; libbpf: %s\n", ctop_tier_name(t),
				len > 2000 ? log + len - 2000 : log);
		}
		fprintf(out, "%s{\"tier\":\"%s\",\"step\":\"%s\",\"errno\":%d,\"reason\":", nref++ ? "," : "",
			ctop_tier_name(t), e.step, e.err);
		json_str(out, e.msg);
		fputc('}', out);
	}
	fprintf(out, "],\"tier\":");
	if (p)
		json_str(out, ctop_tier_name(ctop_probe_tier(p)));
	else
		fprintf(out, "\"stats\"");
	return p;
}

int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n < 0 ? -errno : 0;
}

void die(const char *what)
{
	printf("{\"ok\":false,\"error\":");
	json_str(stdout, what);
	printf(",\"errno\":%d}\n", errno);
	fprintf(stderr, "ctop-selftest: %s: %s\n", what, strerror(errno));
	exit(1);
}

int lo_up(void)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	if (s < 0)
		return -1;
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0 || (ifr.ifr_flags |= IFF_UP, ioctl(s, SIOCSIFFLAGS, &ifr) < 0)) {
		close(s);
		return -1;
	}
	close(s);
	return 0;
}

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

struct ctop_probe *attach_here(int tier, const char *nft, const char *family, struct ctop_netns **ns)
{
	struct ctop_probe *p;
	struct ctop_err e = { 0 };
	struct stat st;
	char cmd[512];

	if (stat("/proc/self/ns/net", &st) < 0)
		die("cannot stat /proc/self/ns/net");
	/* Conntrack hooks exist only while a rule needs them. */
	snprintf(cmd, sizeof(cmd),
		 "%s -f - <<'EOF'\ntable %s ctop_selftest {\n chain out { type filter hook output priority 0; ct state new accept; }\n}\nEOF",
		 nft, family);
	if (system(cmd) != 0)
		die("nft could not add the conntrack rule");
	printf("{");
	p = load_tier(tier, (uint32_t)st.st_ino, stdout);
	if (!p || ctop_probe_tier(p) != tier) {
		printf(",\"ok\":false,\"error\":\"the tier did not load\"}\n");
		return NULL;
	}
	/* the netfilter tier's hooks belong to this namespace: link them here */
	if (ctop_netns_open("/proc/self/ns/net", tier == CTOP_TIER_NETFILTER ? ctop_probe_nf_prog_fd(p) : -1, ns, &e)) {
		errno = e.err;
		die(e.msg);
	}
	return p;
}

static int scenario(int tier, const char *nft)
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
	if (tier == CTOP_TIER_NETFILTER) {
		/* the drop program matches kfree_skb events against the drop
		 * statistic: seed its per-CPU baseline, then attach it */
		static struct ctop_ct_cpu_stat cpus[CTOP_MAX_CPUS];
		static uint32_t drops[CTOP_MAX_CPUS];
		int n = 0;

		if (ctop_netns_links(ns) == 0)
			die("no netfilter link in the namespace");
		if (ctop_netns_cpu_stats(ns, cpus, CTOP_MAX_CPUS, &n, &e))
			die(e.msg);
		for (int i = 0; i < n; i++)
			if (cpus[i].cpu < CTOP_MAX_CPUS)
				drops[cpus[i].cpu] = cpus[i].drop;
		if (ctop_probe_seed_drops(p, (uint32_t)st.st_ino, drops, ctop_probe_ncpus(p), &e) ||
		    ctop_probe_attach_drops(p, &e)) {
			errno = e.err;
			die(e.msg);
		}
	}

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
	if (tier == CTOP_TIER_NETFILTER) {
		const char *t = ctop_tier_name(tier);

		not_counted("early drops", t);
		not_counted("deletes", t);
		not_counted("entries per port", t);
		not_counted("insert_failed", t);
		not_counted("clashes", t);
		check("map overflows", (long long)(totals[CTOP_TOTAL_PORT_OVERFLOW] + totals[CTOP_TOTAL_TUPLE_OVERFLOW] +
						    totals[CTOP_TOTAL_DROP_TUPLE_OVERFLOW]), 0);
		check("drops whose headers could not be read", (long long)totals[CTOP_TOTAL_DROP_UNPARSED], 0);
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
					    totals[CTOP_TOTAL_EVENTS_OVERFLOW]), 0);

done:
	printf(",\"ok\":%s,\"checks\":[%.*s]}\n", failures ? "false" : "true", (int)checks_len, checks);
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

static void usage(void)
{
	fprintf(stderr, "usage: ctop-selftest probe [--tier auto|fentry|kprobe|netfilter]\n"
			"       ctop-selftest hold --tier fentry|kprobe|netfilter [--floor] [--max-tuples N]\n"
			"       ctop-selftest scenario --tier fentry|kprobe|netfilter [--nft PATH]\n"
			"       ctop-selftest roles --tier fentry|kprobe|netfilter [--nft PATH]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *nft = "nft";
	int tier = -1, floor = 0;

	if (argc < 2)
		usage();
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--tier") && i + 1 < argc)
			tier = parse_tier(argv[++i]);
		else if (!strcmp(argv[i], "--max-tuples") && i + 1 < argc)
			max_tuples = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--floor"))
			floor = 1;
		else if (!strcmp(argv[i], "--nft") && i + 1 < argc)
			nft = argv[++i];
		else
			usage();
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "probe")) {
		struct ctop_probe *p;

		printf("{\"kernel\":");
		{
			char rel[128] = "unknown";
			FILE *f = fopen("/proc/sys/kernel/osrelease", "r");

			if (f) {
				if (fgets(rel, sizeof(rel), f))
					rel[strcspn(rel, "\n")] = 0;
				fclose(f);
			}
			json_str(stdout, rel);
		}
		printf(",");
		p = load_tier(tier, 0, stdout);
		printf("}\n");
		ctop_probe_destroy(p);
		return p ? 0 : 1;
	}
	if (!strcmp(argv[1], "hold")) {
		if (tier < 0) {
			fprintf(stderr, "ctop-selftest: hold needs --tier fentry, kprobe or netfilter\n");
			return 2;
		}
		return hold(tier, floor);
	}
	if (!strcmp(argv[1], "scenario")) {
		if (tier < 0) {
			fprintf(stderr, "ctop-selftest: scenario needs --tier fentry, kprobe or netfilter\n");
			return 2;
		}
		return scenario(tier, nft);
	}
	if (!strcmp(argv[1], "roles")) {
		if (tier < 0) {
			fprintf(stderr, "ctop-selftest: roles needs --tier fentry, kprobe or netfilter\n");
			return 2;
		}
		return roles_scenario(tier, nft);
	}
	usage();
	return 2;
}
