// SPDX-License-Identifier: GPL-2.0
/* The namespace a scenario runs in and the tier under test (lab.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"
#include "lab.h"

uint32_t lab_max_tuples;
int lab_drops_via;

struct ctop_probe *load_tier(int tier, uint32_t netns, FILE *out)
{
	struct ctop_probe_opts o = { .target_netns = netns, .tier = tier, .max_tuples = lab_max_tuples,
				       .drops_via = lab_drops_via };
	struct ctop_tier_refusal refused[CTOP_TIER_COUNT];
	struct ctop_probe *p = NULL;
	struct ctop_err e = { 0 };
	int nref = 0;

	ctop_probe_open_best(&o, &p, refused, &nref, &e);
	fprintf(out, "\"refused\":[");
	for (int i = 0; i < nref; i++) {
		const struct ctop_tier_refusal *r = &refused[i];

		/* libbpf's own words (the verifier log's end) for whoever reads stderr */
		fprintf(stderr, "ctop-selftest: tier %s refused; libbpf: %s\n", ctop_tier_name(r->tier), r->log);
		fprintf(out, "%s{\"tier\":\"%s\",\"step\":\"%s\",\"errno\":%d,\"reason\":", i ? "," : "",
			ctop_tier_name(r->tier), r->err.step, r->err.err);
		json_str(out, r->err.msg);
		fputc('}', out);
	}
	fprintf(out, "],\"tier\":");
	if (p) {
		json_str(out, ctop_tier_name(ctop_probe_tier(p)));
		fprintf(out, ",\"dropsVia\":\"%s\"", ctop_drops_via_name(ctop_probe_drops_via(p)));
	} else
		fprintf(out, "\"stats\"");
	return p;
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

void watch_drops(struct ctop_probe *p, struct ctop_netns *ns)
{
	struct ctop_err e = { 0 };

	if (ctop_probe_drops_via(p) != CTOP_DROPS_KFREE_SKB)
		return;
	if (ctop_probe_seed_drops_netns(p, ns, &e) || ctop_probe_attach_drops(p, &e)) {
		errno = e.err;
		die(e.msg);
	}
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
