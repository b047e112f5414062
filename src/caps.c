#define _GNU_SOURCE
#include "caps.h"
#include "process.h"

#include <errno.h>
#include <sys/capability.h>
#include <sys/prctl.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

int pf_caps_last(void)
{
	/* cap_max_bits() reads /proc/sys/kernel/cap_last_cap (or probes). */
	int n = (int)cap_max_bits() - 1;
	return n > 63 ? 63 : n;
}

int pf_caps_get_bounding(uint64_t which, uint64_t *ret_set, struct pf_error *err)
{
	/* A prctl per capability. CapBnd of /proc/self/status would be three
	 * calls instead of 41, but the kernel formats the whole status file
	 * for it: 11.5 us a read against 7.6 us for the 41 prctls, measured
	 * on the 2-core test VM (tests/bench/startup). */
	uint64_t set = 0;
	int last = pf_caps_last();
	for (int c = 0; c <= last; c++) {
		if (!(which & (UINT64_C(1) << c)))
			continue;
		int r = cap_get_bound((cap_value_t)c);
		if (r < 0)
			return pf_error_errno(err, errno, "read bounding set");
		if (r)
			set |= UINT64_C(1) << c;
	}
	*ret_set = set;
	return 0;
}

int pf_caps_drop_bounding(uint64_t keep, int keep_on_user_switch,
			  struct pf_error *err)
{
	/* Dropped without reading first: dropping one that is not there
	 * succeeds, so this is one prctl per capability dropped rather than
	 * a read and a drop. Only when a drop fails (EPERM without
	 * CAP_SETPCAP) does it matter whether the capability was there. */
	int last = pf_caps_last();
	for (int c = 0; c <= last; c++) {
		if (keep & (UINT64_C(1) << c))
			continue;
		if (prctl(PR_CAPBSET_DROP, (unsigned long)c, 0, 0, 0) == 0)
			continue;
		int e = errno;
		if (cap_get_bound((cap_value_t)c) == 0)
			continue; /* not there to drop */
		char *name = cap_to_name((cap_value_t)c);
		pf_error_errno(err, e, "drop %s from the bounding set", name ? name : "capability");
		cap_free(name);
		return -1;
	}
	if (keep_on_user_switch && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return pf_error_errno(err, errno, "keep capabilities across the user switch");
	return 0;
}

int pf_caps_apply(uint64_t keep, uint64_t ambient, struct pf_error *err)
{
	/* capget and capset themselves: libcap's cap_get_proc, cap_init and
	 * cap_set_proc cost two more capget calls for the same result. */
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	if (capget(&hdr, data) < 0)
		return pf_error_errno(err, errno, "read capabilities");
	int last = pf_caps_last();
	uint64_t known = last >= 63 ? UINT64_MAX : (UINT64_C(1) << (last + 1)) - 1;
	uint64_t permitted = data[0].permitted | (uint64_t)data[1].permitted << 32;
	uint64_t kept = keep & permitted & known;
	for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) {
		uint32_t half = (uint32_t)(kept >> (32 * i));
		data[i].permitted = data[i].effective = data[i].inheritable = half;
	}
	/* Nothing inherited may linger in the ambient set. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return pf_error_errno(err, errno, "clear ambient capabilities");
	hdr = (struct __user_cap_header_struct){ .version = _LINUX_CAPABILITY_VERSION_3 };
	if (capset(&hdr, data) < 0)
		return pf_error_errno(err, errno, "set capabilities");
	for (int c = 0; c <= last; c++) {
		if (!(ambient & kept & (UINT64_C(1) << c)))
			continue;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (unsigned long)c, 0, 0) < 0)
			return pf_error_errno(err, errno, "raise ambient capability %d", c);
	}
	/* A credential change: arm the parent death signal again (the kernel
	 * clears it when the permitted set is not a subset of the old one). */
	return pf_process_rearm_parent_death(err);
}

int pf_caps_no_new_privs(struct pf_error *err)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return pf_error_errno(err, errno, "set no_new_privs");
	return 0;
}
