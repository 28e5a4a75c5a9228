// SPDX-License-Identifier: GPL-2.0
/* The core's one error shape (struct ctop_err) and libbpf's messages, kept
 * for the error of the step that failed (ctop_core.h). */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <bpf/libbpf.h>
#include "ctop_core.h"

/* libbpf's warnings and errors (not its debug chatter), up to 16 KiB; two
 * threads may load objects at once (ctop_walk_start), hence the lock */
static char log_buf[16384];
static size_t log_len;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static int capture_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	pthread_mutex_lock(&log_lock);
	if (log_len < sizeof(log_buf) - 1) {
		int n = vsnprintf(log_buf + log_len, sizeof(log_buf) - log_len, fmt, ap);

		if (n > 0)
			log_len += (size_t)n < sizeof(log_buf) - log_len ? (size_t)n : sizeof(log_buf) - log_len - 1;
	}
	pthread_mutex_unlock(&log_lock);
	return 0;
}

const char *ctop_libbpf_log(void) { return log_buf; }

void ctop_libbpf_log_clear(void)
{
	pthread_mutex_lock(&log_lock);
	log_len = 0;
	log_buf[0] = 0;
	pthread_mutex_unlock(&log_lock);
}

void ctop_libbpf_log_begin(void)
{
	libbpf_set_print(capture_print);
	ctop_libbpf_log_clear();
}

int ctop_err_set(struct ctop_err *e, int err, const char *step, const char *fmt, ...)
{
	va_list ap;

	if (err < 0)
		err = -err;
	if (e) {
		e->err = err;
		snprintf(e->step, sizeof(e->step), "%s", step);
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	}
	return -err;
}
