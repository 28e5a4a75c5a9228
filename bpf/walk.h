/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between bpf/walk.bpf.c and native/core/walk.c. */
#ifndef CTOP_WALK_H
#define CTOP_WALK_H

/* Longest chain followed. The kernel refuses inserts into chains longer than
 * 50..79 (nf_conntrack_core.c, MIN_CHAINLEN/MAX_CHAINLEN), so a longer one
 * means the walk lost its way (entries moving), not a real chain. */
#define CTOP_WALK_MAX_CHAIN 256
/* Histogram slots: chain length 0..CTOP_WALK_HIST-2, the last "that or more". */
#define CTOP_WALK_HIST 128

#define CTOP_LOCATE_OK 0
#define CTOP_LOCATE_READ 1      /* a pointer could not be read */
#define CTOP_LOCATE_NO_MARKER 2 /* no nulls marker within CTOP_WALK_MAX_CHAIN nodes */
#define CTOP_LOCATE_NO_HEAD 3   /* no bucket head within CTOP_WALK_MAX_CHAIN nodes back */

#endif
