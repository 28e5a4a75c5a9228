// SPDX-License-Identifier: GPL-2.0
/*
 * Per-tuple windows computed where the raw keys are: the live screen asks
 * "which 5-tuples moved since the last tick, and by how much" once a second
 * over up to max_tuples + max_drop_tuples entries. Doing that in JavaScript
 * meant formatting two addresses and building a string key per tuple per
 * tick (about 290 ms at 64,000 tuples); here it is one hash probe per map
 * entry on the 44-byte key, and only the tuples that moved cross into
 * JavaScript.
 *
 * The kernel maps never delete entries (bpf/ctop.h), so the set of keys only
 * grows and is bounded by the two map capacities: the table below is sized
 * once for both and never grows or evicts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctop_core.h"

struct slot {
	struct ctop_tuple_key key;
	uint32_t used;     /* 0: empty */
	uint32_t out_gen;  /* step in which out_idx is valid */
	uint32_t out_idx;  /* this step's output record of this key */
	uint64_t inserts;  /* cumulative values seen at the last step */
	uint64_t drops;
};

struct ctop_tuple_window {
	struct slot *slots;
	size_t mask;       /* capacity - 1, capacity a power of two */
	size_t used;
	size_t limit;      /* keys the kernel maps can hold in all */
	uint32_t gen;
};

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

int ctop_tuple_window_new(size_t max_keys, struct ctop_tuple_window **out)
{
	struct ctop_tuple_window *w = calloc(1, sizeof(*w));
	size_t cap = 64;

	if (!w)
		return -ENOMEM;
	/* load factor at most 1/2, so linear probing stays short */
	while (cap < max_keys * 2)
		cap <<= 1;
	w->slots = calloc(cap, sizeof(*w->slots));
	if (!w->slots) {
		free(w);
		return -ENOMEM;
	}
	w->mask = cap - 1;
	w->limit = max_keys;
	*out = w;
	return 0;
}

void ctop_tuple_window_free(struct ctop_tuple_window *w)
{
	if (!w)
		return;
	free(w->slots);
	free(w);
}

static struct slot *find_or_add(struct ctop_tuple_window *w, const struct ctop_tuple_key *k)
{
	size_t i = hash_key(k) & w->mask;

	for (;;) {
		struct slot *s = &w->slots[i];

		if (!s->used) {
			/* more keys than both maps can hold: the maps were not
			 * what this window was sized for; refuse rather than
			 * fill the table past its load factor */
			if (w->used >= w->limit)
				return NULL;
			s->used = 1;
			s->key = *k;
			w->used++;
			return s;
		}
		if (memcmp(&s->key, k, sizeof(*k)) == 0)
			return s;
		i = (i + 1) & w->mask;
	}
}

/*
 * One step: `ins` holds the insert map's records (counts.inserts set),
 * `drops` the drop map's (counts.drops set), both cumulative. Writes to
 * `out` (room for n_ins + n_drops records) one record per tuple whose
 * inserts or drops grew since the previous step, with the growth as its
 * counts, and remembers the new cumulative values.
 */
int ctop_tuple_window_step(struct ctop_tuple_window *w, const struct ctop_tuple_rec *ins, size_t n_ins,
			   const struct ctop_tuple_rec *drops, size_t n_drops, struct ctop_tuple_rec *out,
			   size_t *n_out)
{
	size_t n = 0;

	w->gen++;
	if (w->gen == 0) { /* wrapped: no slot may keep a stale match */
		for (size_t i = 0; i <= w->mask; i++)
			w->slots[i].out_gen = 0;
		w->gen = 1;
	}
	for (int pass = 0; pass < 2; pass++) {
		const struct ctop_tuple_rec *recs = pass ? drops : ins;
		size_t count = pass ? n_drops : n_ins;

		for (size_t i = 0; i < count; i++) {
			struct slot *s = find_or_add(w, &recs[i].key);
			uint64_t now, *last, grew;

			if (!s)
				return -E2BIG;
			now = pass ? recs[i].counts.drops : recs[i].counts.inserts;
			last = pass ? &s->drops : &s->inserts;
			/* counters only grow; a smaller value means a new probe
			 * behind the same window: count from zero */
			grew = now >= *last ? now - *last : now;
			*last = now;
			if (!grew)
				continue;
			if (s->out_gen != w->gen) {
				s->out_gen = w->gen;
				s->out_idx = (uint32_t)n;
				memset(&out[n], 0, sizeof(out[n]));
				out[n].key = s->key;
				n++;
			}
			if (pass)
				out[s->out_idx].counts.drops = grew;
			else
				out[s->out_idx].counts.inserts = grew;
		}
	}
	*n_out = n;
	return 0;
}
