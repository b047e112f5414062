/* Capabilities (libcap) and no_new_privs, applied in the child.
 *
 * Sets are bit masks: bit n is capability n (CAP_LAST_CAP is 40 in Linux
 * 6.x, so 64 bits are plenty). Only capabilities the running kernel knows
 * are ever touched. */
#pragma once

#include <stdint.h>

#include "error.h"

/* Highest capability number the running kernel knows. */
int pf_caps_last(void);

/* The calling process's bounding set: what "all" means on this host. Only
 * the capabilities in which are read (one prctl each), the others are
 * reported absent. */
int pf_caps_get_bounding(uint64_t which, uint64_t *ret_set, struct pf_error *err);

/* Child, before the user switch (needs CAP_SETPCAP): drop from the
 * bounding set every capability not in keep, so that neither exec nor a
 * setuid or file-capability binary can bring it back. When
 * keep_on_user_switch is set, also arm PR_SET_KEEPCAPS so that the
 * permitted set survives a switch to a non-root uid (for ambient caps). */
int pf_caps_drop_bounding(uint64_t keep, int keep_on_user_switch,
			  struct pf_error *err);

/* Child, after the user switch, right before exec: permitted, effective
 * and inheritable become keep (limited to what is still permitted); the
 * ambient set is cleared, then ambient is raised, so that a non-root
 * command keeps those capabilities across exec. */
int pf_caps_apply(uint64_t keep, uint64_t ambient, struct pf_error *err);

/* Child: PR_SET_NO_NEW_PRIVS, inherited by everything the command runs. */
int pf_caps_no_new_privs(struct pf_error *err);
