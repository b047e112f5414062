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

int pf_caps_get_bounding(uint64_t *ret_set, struct pf_error *err)
{
	uint64_t set = 0;
	int last = pf_caps_last();
	for (int c = 0; c <= last; c++) {
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
	int last = pf_caps_last();
	for (int c = 0; c <= last; c++) {
		if (keep & (UINT64_C(1) << c))
			continue;
		int r = cap_get_bound((cap_value_t)c);
		if (r <= 0)
			continue; /* not there to drop */
		if (cap_drop_bound((cap_value_t)c) < 0) {
			char *name = cap_to_name((cap_value_t)c);
			int e = errno;
			pf_error_errno(err, e, "drop %s from the bounding set",
				       name ? name : "capability");
			cap_free(name);
			return -1;
		}
	}
	if (keep_on_user_switch && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return pf_error_errno(err, errno, "keep capabilities across the user switch");
	return 0;
}

int pf_caps_apply(uint64_t keep, uint64_t ambient, struct pf_error *err)
{
	cap_t now = cap_get_proc();
	if (!now)
		return pf_error_errno(err, errno, "read capabilities");
	cap_t want = cap_init();
	if (!want) {
		cap_free(now);
		return pf_error_errno(err, errno, "allocate capabilities");
	}
	int last = pf_caps_last();
	uint64_t kept = 0;
	for (int c = 0; c <= last; c++) {
		cap_value_t v = (cap_value_t)c;
		cap_flag_value_t permitted = CAP_CLEAR;
		cap_get_flag(now, v, CAP_PERMITTED, &permitted);
		if (!(keep & (UINT64_C(1) << c)) || permitted != CAP_SET)
			continue;
		cap_set_flag(want, CAP_PERMITTED, 1, &v, CAP_SET);
		cap_set_flag(want, CAP_EFFECTIVE, 1, &v, CAP_SET);
		cap_set_flag(want, CAP_INHERITABLE, 1, &v, CAP_SET);
		kept |= UINT64_C(1) << c;
	}
	cap_free(now);
	/* Nothing inherited may linger in the ambient set. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
		cap_free(want);
		return pf_error_errno(err, errno, "clear ambient capabilities");
	}
	int r = cap_set_proc(want);
	int e = errno;
	cap_free(want);
	if (r < 0)
		return pf_error_errno(err, e, "set capabilities");
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
