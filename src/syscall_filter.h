/* (Not seccomp.h: that name is libseccomp's own header.) Seccomp filters compiled with libseccomp: a default action, rules of
 * (action, syscall, argument conditions), for the native architecture
 * and its compat ones, exported as a classic BPF program (struct
 * sock_filter[]) that the exec plan loads right before execve (exec.h).
 * Compiling never loads anything: the supervisor compiles, the command's
 * process loads. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct pf_seccomp;

/* One condition on a syscall argument. op: "eq", "ne", "lt", "le", "gt",
 * "ge", "masked_eq" ((arg & value) == value2, as OCI's SCMP_CMP_MASKED_EQ
 * with value the mask). */
struct pf_seccomp_arg {
	unsigned index; /* 0..5 */
	const char *op;
	uint64_t value;
	uint64_t value2;
};

/* A new filter whose default action is action ("allow", "errno", "kill",
 * "kill_process", "trap", "log"; errnum for "errno"). arches: names as
 * libseccomp spells them ("x86_64", "x86", "x32", "aarch64", "arm"...;
 * an "SCMP_ARCH_" prefix and upper case are accepted); NULL/0: the native
 * one and its compat ones (x86_64: x86 and x32; aarch64: arm), so that a
 * 32-bit syscall meets the same rules. A syscall of an architecture the
 * filter does not cover kills the thread. NULL on failure. */
struct pf_seccomp *pf_seccomp_new(const char *action, int errnum, const char *const *arches,
				  size_t n_arches, struct pf_error *err);

/* Add a rule: syscall (by name) gets action when every condition holds.
 * A rule whose action is the default's does nothing and is accepted.
 * Unknown syscall names and actions fail (EINVAL). */
int pf_seccomp_add(struct pf_seccomp *f, const char *action, int errnum, const char *syscall,
		   const struct pf_seccomp_arg *args, size_t n_args, struct pf_error *err);

/* The BPF program: *ret_buf (malloc'ed, struct sock_filter[]) and its
 * length in bytes. */
int pf_seccomp_export(struct pf_seccomp *f, void **ret_buf, size_t *ret_len, struct pf_error *err);

void pf_seccomp_free(struct pf_seccomp *f);

/* Does libseccomp know this system call name (on any architecture)? */
int pf_seccomp_syscall_known(const char *name);

/* Does libseccomp know this architecture name (as above)? */
int pf_seccomp_arch_known(const char *name);
