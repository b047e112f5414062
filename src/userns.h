/* User namespaces: id maps (written by the parent) and switching to the
 * user a command runs as (in the child). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

struct pf_id_range {
	uint32_t inside;  /* first id in the container */
	uint32_t outside; /* first id on the host */
	uint32_t count;
};

enum pf_id_kind { PF_UID, PF_GID };

/* Parent: write /proc/PID/{uid,gid}_map. Must happen once, before the child
 * relies on its ids. */
int pf_userns_write_map(pid_t pid, enum pf_id_kind kind,
			const struct pf_id_range *ranges, size_t n,
			struct pf_error *err);

/* Parent: write "deny" to /proc/PID/setgroups, which the kernel requires
 * before an unprivileged process may write a gid map. */
int pf_userns_deny_setgroups(pid_t pid, struct pf_error *err);

/* Child: become uid/gid with the supplementary groups given (none when
 * ngroups is 0). Where setgroups(2) is denied by the user namespace, an
 * empty group list is accepted as is. Re-arms the parent-death signal,
 * which a credential change clears. */
int pf_user_switch(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups,
		   struct pf_error *err);
