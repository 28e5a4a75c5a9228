// SPDX-License-Identifier: GPL-2.0
/* The running kernel's types, from its BTF (/sys/kernel/btf/vmlinux). */
#include <errno.h>
#include <string.h>
#include <bpf/btf.h>
#include "ctop_core.h"

/* The kernel's BTF while held (ctop_btf_hold): each parse costs about 5 ms
 * here, and the loader asks it more than once while it tries its tiers. */
static struct btf *held;
static int held_refs;

void ctop_btf_hold(void)
{
	held_refs++;
}

void ctop_btf_release(void)
{
	if (held_refs > 0 && --held_refs == 0) {
		btf__free(held);
		held = NULL;
	}
}

/* The BTF to read, or NULL (errno set); free it with btf_put. */
static struct btf *btf_get(void)
{
	if (!held_refs)
		return btf__load_vmlinux_btf();
	if (!held)
		held = btf__load_vmlinux_btf();
	return held;
}

static void btf_put(struct btf *btf)
{
	if (btf != held)
		btf__free(btf);
}

int ctop_btf_struct(const char *name, uint32_t *id, uint32_t *size, struct ctop_err *e)
{
	struct btf *btf = btf_get();
	int found;
	long long sz = 0;

	if (!btf)
		return ctop_err_set(e, errno ? errno : ENOENT, "btf", "cannot load the kernel's BTF: %s",
				    strerror(errno ? errno : ENOENT));
	found = btf__find_by_name_kind(btf, name, BTF_KIND_STRUCT);
	if (found > 0 && size)
		sz = btf__resolve_size(btf, found);
	btf_put(btf);
	if (found <= 0)
		return ctop_err_set(e, ENOENT, "btf", "the kernel's BTF has no struct %s", name);
	if (sz < 0)
		return ctop_err_set(e, (int)-sz, "btf", "cannot size struct %s", name);
	if (id)
		*id = (uint32_t)found;
	if (size)
		*size = (uint32_t)sz;
	return 0;
}

/* Follow typedefs and modifiers to the type they name. */
static const struct btf_type *btf_strip(const struct btf *btf, uint32_t id)
{
	const struct btf_type *t = btf__type_by_id(btf, id);

	while (t && (btf_is_typedef(t) || btf_is_mod(t)))
		t = btf__type_by_id(btf, t->type);
	return t;
}

/*
 * Does this kernel free a packet that a netfilter hook dropped with
 * SKB_DROP_REASON_NETFILTER_DROP, and does tracepoint kfree_skb pass that
 * reason (its third argument)? Both came with the drop reasons (5.17; 5.19
 * for nf_hook_slow's NF_DROP): the enumerator in enum skb_drop_reason and
 * the reason in btf_trace_kfree_skb's prototype, which is how tp_btf programs
 * see the tracepoint. Read once per process: a running kernel's BTF does not
 * change.
 */
int ctop_btf_kfree_skb_netfilter_drop(void)
{
	static int known = -1;
	struct btf *btf;
	const struct btf_type *t, *proto;
	int id, ok = 0;

	if (known >= 0)
		return known;
	btf = btf_get();
	if (!btf)
		return known = 0;
	id = btf__find_by_name_kind(btf, "skb_drop_reason", BTF_KIND_ENUM);
	t = id > 0 ? btf__type_by_id(btf, id) : NULL;
	for (int i = 0; t && i < btf_vlen(t) && !ok; i++)
		ok = !strcmp(btf__name_by_offset(btf, btf_enum(t)[i].name_off), "SKB_DROP_REASON_NETFILTER_DROP");
	/* typedef void (*btf_trace_kfree_skb)(void *, struct sk_buff *, void *location, enum skb_drop_reason, ...) */
	id = ok ? btf__find_by_name_kind(btf, "btf_trace_kfree_skb", BTF_KIND_TYPEDEF) : -1;
	t = id > 0 ? btf_strip(btf, (uint32_t)id) : NULL;
	proto = t && btf_is_ptr(t) ? btf__type_by_id(btf, t->type) : NULL;
	ok = proto && btf_is_func_proto(proto) && btf_vlen(proto) >= 4;
	if (ok) {
		const struct btf_type *reason = btf_strip(btf, btf_params(proto)[3].type);

		ok = reason && btf_is_enum(reason) && !strcmp(btf__name_by_offset(btf, reason->name_off), "skb_drop_reason");
	}
	btf_put(btf);
	return known = ok;
}
