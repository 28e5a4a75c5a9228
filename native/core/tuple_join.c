// SPDX-License-Identifier: GPL-2.0
/*
 * Per-tuple windows: which 5-tuples moved since the previous read, and by
 * how much. The kernel does the finding (ctop_collect_moved in
 * bpf/ctop.bpf.c hands over only moved tuples, with their growth); this file
 * joins the insert map's and the drop map's moved tuples on the raw key, so
 * that a tuple that both got in and was refused is one record.
 *
 * Drops are the short list (their map is small and a refused tuple is rare
 * next to new flows), so the join hashes the drop side and probes it with
 * each insert: work and memory in proportion to what moved, nothing kept
 * between reads.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctop_core.h"

/* FNV-1a over the key: the key is packed (no holes, pad always 0). */
static size_t hash_key(const struct ctop_tuple_key *k)
{
	const unsigned char *b = (const unsigned char *)k;
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < sizeof(*k); i++) {
		h ^= b[i];
		h *= 1099511628211ULL;
	}
	return (size_t)(h ^ (h >> 29));
}

int ctop_tuple_join(const struct ctop_tuple_moved *ins, size_t n_ins, const struct ctop_tuple_moved *drops,
		    size_t n_drops, struct ctop_tuple_rec *out, size_t *n_out)
{
	size_t cap = 16, mask, n = 0;
	uint32_t *slot;     /* index + 1 into drops[]; 0: empty */
	unsigned char *matched;

	while (cap < n_drops * 2)
		cap <<= 1;
	mask = cap - 1;
	slot = calloc(cap, sizeof(*slot));
	matched = calloc(n_drops ? n_drops : 1, 1);
	if (!slot || !matched) {
		free(slot);
		free(matched);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n_drops; i++) {
		size_t h = hash_key(&drops[i].key) & mask;

		/* a key appears at most once per map read */
		while (slot[h])
			h = (h + 1) & mask;
		slot[h] = (uint32_t)i + 1;
	}
	for (size_t i = 0; i < n_ins; i++) {
		struct ctop_tuple_rec *r = &out[n++];

		memset(r, 0, sizeof(*r));
		r->key = ins[i].key;
		r->counts.inserts = ins[i].grew;
		if (!n_drops)
			continue;
		for (size_t h = hash_key(&ins[i].key) & mask; slot[h]; h = (h + 1) & mask) {
			const struct ctop_tuple_moved *d = &drops[slot[h] - 1];

			if (memcmp(&d->key, &ins[i].key, sizeof(d->key)) == 0) {
				r->counts.drops = d->grew;
				matched[slot[h] - 1] = 1;
				break;
			}
		}
	}
	for (size_t i = 0; i < n_drops; i++) {
		struct ctop_tuple_rec *r;

		if (matched[i])
			continue;
		r = &out[n++];
		memset(r, 0, sizeof(*r));
		r->key = drops[i].key;
		r->counts.drops = drops[i].grew;
	}
	free(slot);
	free(matched);
	*n_out = n;
	return 0;
}
