// SPDX-License-Identifier: GPL-2.0
/* Checks recorded as JSON, and the one way a scenario gives up (check.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"

int failures;
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

void not_counted(const char *name, const char *tier)
{
	jappend("%s{\"name\":\"%s\",\"notCountedBy\":\"%s\"}", checks_len ? "," : "", name, tier);
}

void check(const char *name, long long got, long long want)
{
	jappend("%s{\"name\":\"%s\",\"got\":%lld,\"want\":%lld,\"ok\":%s}", checks_len ? "," : "", name, got, want,
		got == want ? "true" : "false");
	if (got != want) {
		failures++;
		fprintf(stderr, "ctop-selftest: MISMATCH %s: got %lld, want %lld\n", name, got, want);
	}
}

void print_checks(void)
{
	printf(",\"ok\":%s,\"checks\":[%.*s]}\n", failures ? "false" : "true", (int)checks_len, checks);
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

void die(const char *what)
{
	printf("{\"ok\":false,\"error\":");
	json_str(stdout, what);
	printf(",\"errno\":%d}\n", errno);
	fprintf(stderr, "ctop-selftest: %s: %s\n", what, strerror(errno));
	exit(1);
}
