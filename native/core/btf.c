// SPDX-License-Identifier: GPL-2.0
/* The running kernel's types, from its BTF (/sys/kernel/btf/vmlinux). */
#include <errno.h>
#include <string.h>
#include <bpf/btf.h>
#include "ctop_core.h"

int ctop_btf_struct(const char *name, uint32_t *id, uint32_t *size, struct ctop_err *e)
{
	struct btf *btf = btf__load_vmlinux_btf();
	int found;
	long long sz = 0;

	if (!btf)
		return ctop_err_set(e, errno ? errno : ENOENT, "btf", "cannot load the kernel's BTF: %s",
				    strerror(errno ? errno : ENOENT));
	found = btf__find_by_name_kind(btf, name, BTF_KIND_STRUCT);
	if (found > 0 && size)
		sz = btf__resolve_size(btf, found);
	btf__free(btf);
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
