// SPDX-License-Identifier: GPL-2.0
/*
 * Reading a whole BPF hash map: the one way every reader in the native core
 * (per-port maps, the census walk's maps) gets its entries out.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>

#include "ctop_core.h"

/* Batch lookup (kernel >= 5.6) takes one syscall per few thousand entries;
 * iterate with get_next_key where it is refused. Keys of at most 64 bytes. */
static int dump_map(int fd, size_t key_sz, size_t val_sz, uint32_t cap, void *keys, void *vals, size_t *n)
{
	DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);
	unsigned char in_batch[64], out_batch[64];
	bool first = true;
	size_t total = 0;
	int err;

	for (;;) {
		__u32 count = cap - (uint32_t)total;

		if (count == 0)
			break;
		err = bpf_map_lookup_batch(fd, first ? NULL : in_batch, out_batch,
					   (char *)keys + total * key_sz, (char *)vals + total * val_sz,
					   &count, &opts);
		if (err && errno != ENOENT) {
			if (first && (errno == EINVAL || errno == 524 /* kernel ENOTSUPP */ || errno == EOPNOTSUPP))
				goto iterate;
			return -errno;
		}
		total += count;
		if (err) /* ENOENT: the whole map was read */
			break;
		memcpy(in_batch, out_batch, sizeof(in_batch));
		first = false;
	}
	*n = total;
	return 0;

iterate:
	total = 0;
	{
		unsigned char cur[64], next[64];
		void *prev = NULL;

		while (total < cap && bpf_map_get_next_key(fd, prev, next) == 0) {
			memcpy((char *)keys + total * key_sz, next, key_sz);
			if (bpf_map_lookup_elem(fd, next, (char *)vals + total * val_sz) == 0)
				total++;
			memcpy(cur, next, key_sz);
			prev = cur;
		}
	}
	*n = total;
	return 0;
}

int ctop_map_read(int fd, size_t key_sz, size_t val_sz, uint32_t cap, void **keys, void **vals, size_t *n)
{
	/* +1: a valid pointer for an empty map */
	*keys = malloc((size_t)cap * key_sz + 1);
	*vals = malloc((size_t)cap * val_sz + 1);
	*n = 0;
	if (!*keys || !*vals)
		return -ENOMEM;
	return dump_map(fd, key_sz, val_sz, cap, *keys, *vals, n);
}
