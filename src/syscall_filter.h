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

/* pf_seccomp_new's flags. KILL_THREAD: a syscall of an architecture
 * the filter does not cover kills the thread, as on a kernel without
 * SECCOMP_RET_KILL_PROCESS (or under valgrind, which hides it): the
 * build-time generator compiles that variant too (see below). */
#define PF_SECCOMP_KILL_THREAD 0x1u

/* A new filter whose default action is action ("allow", "errno", "kill",
 * "kill_process", "trap", "log"; errnum for "errno"). arches: names as
 * libseccomp spells them ("x86_64", "x86", "x32", "aarch64", "arm"...;
 * an "SCMP_ARCH_" prefix and upper case are accepted); NULL/0: the native
 * one and its compat ones (x86_64: x86 and x32; aarch64: arm), so that a
 * 32-bit syscall meets the same rules. A syscall of an architecture the
 * filter does not cover kills the process (the thread where the kernel
 * cannot kill a process, or with PF_SECCOMP_KILL_THREAD). NULL on
 * failure. */
struct pf_seccomp *pf_seccomp_new(const char *action, int errnum, const char *const *arches,
				  size_t n_arches, unsigned flags, struct pf_error *err);

/* Add a rule: syscall (by name) gets action when every condition holds.
 * A rule whose action is the default's does nothing and is accepted.
 * Unknown syscall names and actions fail (EINVAL). The rule is checked
 * and recorded here; libseccomp gets it in pf_seccomp_export, which
 * reports what libseccomp itself refuses. */
int pf_seccomp_add(struct pf_seccomp *f, const char *action, int errnum, const char *syscall,
		   const struct pf_seccomp_arg *args, size_t n_args, struct pf_error *err);

/* The canonical key of a filter: every input libseccomp's program
 * depends on (libseccomp's version, the native architecture, the default
 * and bad-architecture actions as libseccomp set them, the architectures
 * in the order added, the rules in the order added, as numbers), as
 * opaque bytes. Two filters with the same key compile to the same
 * program: the lookup of pf_seccomp_export relies on it. *ret_key is
 * f's, valid until the next pf_seccomp_add or pf_seccomp_free. */
int pf_seccomp_key(struct pf_seccomp *f, const void **ret_key, size_t *ret_len, struct pf_error *err);

/* pf_seccomp_export's flags. NO_BUILTIN: always compile with libseccomp. */
#define PF_SECCOMP_NO_BUILTIN 0x1u

/* Where pf_seccomp_export took the program from. */
enum pf_seccomp_source {
	PF_SECCOMP_COMPILED, /* libseccomp compiled it now */
	PF_SECCOMP_BUILTIN,  /* compiled at build time for the same key */
};

/* The BPF program: *ret_buf (malloc'ed, struct sock_filter[]) and its
 * length in bytes. When the filter's key is one of pf_seccomp_builtin's,
 * that program (compiled at build time by the same libseccomp from the
 * same inputs), unless flags has PF_SECCOMP_NO_BUILTIN; otherwise
 * libseccomp compiles it now. ret_source may be NULL. */
int pf_seccomp_export(struct pf_seccomp *f, unsigned flags, void **ret_buf, size_t *ret_len,
		      enum pf_seccomp_source *ret_source, struct pf_error *err);

/* Programs compiled at build time: tools/gen_seccomp.c runs the sandbox
 * concern's own code for the default filter's variants (lua/pflask/
 * sandbox.lua, BUILTIN_PLANS) and writes, for each, the key and the
 * program that libseccomp exported, into a C file linked into the pflask
 * executable only (when it links libseccomp statically: the library that
 * compiled them is then the one that would compile them at run time).
 * Elsewhere (core.so, the generator itself, cross builds) the symbol is
 * undefined, hence weak: &pf_seccomp_builtin is NULL. */
struct pf_seccomp_builtin_filter {
	const unsigned char *key;
	size_t key_len;
	const unsigned char *bpf;
	size_t bpf_len;
};

struct pf_seccomp_builtin {
	const struct pf_seccomp_builtin_filter *filters;
	size_t n_filters;
};

extern const struct pf_seccomp_builtin pf_seccomp_builtin __attribute__((weak));

void pf_seccomp_free(struct pf_seccomp *f);

/* Does libseccomp know this system call name (on any architecture)? */
int pf_seccomp_syscall_known(const char *name);

/* Does libseccomp know this architecture name (as above)? */
int pf_seccomp_arch_known(const char *name);
