#define _GNU_SOURCE
#include "syscall_filter.h"

#include <ctype.h>
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct pf_seccomp {
	scmp_filter_ctx ctx;
	uint32_t default_action;
};

static int parse_action(const char *name, int errnum, uint32_t *out, struct pf_error *err)
{
	if (strcmp(name, "allow") == 0)
		*out = SCMP_ACT_ALLOW;
	else if (strcmp(name, "errno") == 0) {
		if (errnum < 0 || errnum > 4095)
			return pf_error_set(err, EINVAL, "seccomp: errno %d is not 0 to 4095", errnum);
		*out = SCMP_ACT_ERRNO((uint32_t)errnum);
	} else if (strcmp(name, "kill") == 0)
		*out = SCMP_ACT_KILL;
	else if (strcmp(name, "kill_process") == 0)
		*out = SCMP_ACT_KILL_PROCESS;
	else if (strcmp(name, "trap") == 0)
		*out = SCMP_ACT_TRAP;
	else if (strcmp(name, "log") == 0)
		*out = SCMP_ACT_LOG;
	else
		return pf_error_set(err, EINVAL,
				    "seccomp: '%s' is not an action (allow, errno, kill, kill_process, trap, log)",
				    name);
	return 0;
}

/* "SCMP_ARCH_X86_64" and "x86_64" alike: libseccomp's own names are
 * lower case without the prefix. */
static uint32_t arch_token(const char *name)
{
	char buf[64];
	if (strncasecmp(name, "SCMP_ARCH_", 10) == 0)
		name += 10;
	size_t n = strlen(name);
	if (n == 0 || n >= sizeof(buf))
		return 0;
	for (size_t i = 0; i <= n; i++)
		buf[i] = (char)tolower((unsigned char)name[i]);
	return seccomp_arch_resolve_name(buf);
}

int pf_seccomp_syscall_known(const char *name)
{
	return seccomp_syscall_resolve_name(name) != __NR_SCMP_ERROR;
}

int pf_seccomp_arch_known(const char *name)
{
	return arch_token(name) != 0;
}

static int add_arch(struct pf_seccomp *f, uint32_t token, struct pf_error *err)
{
	int r = seccomp_arch_add(f->ctx, token);
	if (r < 0 && r != -EEXIST)
		return pf_error_errno(err, -r, "seccomp: add architecture %u", token);
	return 0;
}

struct pf_seccomp *pf_seccomp_new(const char *action, int errnum, const char *const *arches,
				  size_t n_arches, struct pf_error *err)
{
	uint32_t def;
	if (parse_action(action, errnum, &def, err) < 0)
		return NULL;
	struct pf_seccomp *f = calloc(1, sizeof(*f));
	if (!f) {
		pf_error_errno(err, ENOMEM, "seccomp");
		return NULL;
	}
	f->default_action = def;
	f->ctx = seccomp_init(def);
	if (!f->ctx) {
		free(f);
		pf_error_set(err, ENOMEM, "seccomp: libseccomp refused the default action '%s'", action);
		return NULL;
	}
	/* A syscall from an architecture not in the filter kills: no
	 * unfiltered entry point (int 0x80 on x86_64) is left open. */
	if (seccomp_attr_set(f->ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) < 0)
		seccomp_attr_set(f->ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL);
	if (n_arches > 0) {
		uint32_t native = seccomp_arch_native();
		int want_native = 0;
		for (size_t i = 0; i < n_arches; i++) {
			uint32_t t = arch_token(arches[i]);
			if (!t) {
				pf_error_set(err, EINVAL, "seccomp: '%s' is not an architecture", arches[i]);
				goto fail;
			}
			if (t == native)
				want_native = 1;
			else if (add_arch(f, t, err) < 0)
				goto fail;
		}
		/* The native one is in from seccomp_init; taken out when the
		 * list leaves it out (its syscalls then kill). */
		if (!want_native && seccomp_arch_remove(f->ctx, native) < 0) {
			pf_error_set(err, EINVAL, "seccomp: cannot leave out the native architecture");
			goto fail;
		}
	} else {
		uint32_t native = seccomp_arch_native();
		if (native == SCMP_ARCH_X86_64) {
			if (add_arch(f, SCMP_ARCH_X86, err) < 0 || add_arch(f, SCMP_ARCH_X32, err) < 0)
				goto fail;
		} else if (native == SCMP_ARCH_AARCH64) {
			if (add_arch(f, SCMP_ARCH_ARM, err) < 0)
				goto fail;
		}
	}
	return f;
fail:
	pf_seccomp_free(f);
	return NULL;
}

static int parse_op(const char *op, enum scmp_compare *out)
{
	static const struct {
		const char *name;
		enum scmp_compare op;
	} ops[] = {
		{ "eq", SCMP_CMP_EQ }, { "ne", SCMP_CMP_NE }, { "lt", SCMP_CMP_LT },
		{ "le", SCMP_CMP_LE }, { "gt", SCMP_CMP_GT }, { "ge", SCMP_CMP_GE },
		{ "masked_eq", SCMP_CMP_MASKED_EQ },
	};
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(op, ops[i].name) == 0) {
			*out = ops[i].op;
			return 0;
		}
	return -1;
}

int pf_seccomp_add(struct pf_seccomp *f, const char *action, int errnum, const char *syscall,
		   const struct pf_seccomp_arg *args, size_t n_args, struct pf_error *err)
{
	uint32_t act;
	if (parse_action(action, errnum, &act, err) < 0)
		return -1;
	int nr = seccomp_syscall_resolve_name(syscall);
	if (nr == __NR_SCMP_ERROR)
		return pf_error_set(err, EINVAL, "seccomp: '%s' is not a system call", syscall);
	if (n_args > 6)
		return pf_error_set(err, EINVAL, "seccomp: %s: more than 6 argument conditions", syscall);
	struct scmp_arg_cmp cmp[6];
	for (size_t i = 0; i < n_args; i++) {
		enum scmp_compare op;
		if (args[i].index > 5)
			return pf_error_set(err, EINVAL, "seccomp: %s: argument index %u is not 0 to 5",
					    syscall, args[i].index);
		if (parse_op(args[i].op, &op) < 0)
			return pf_error_set(err, EINVAL,
					    "seccomp: %s: '%s' is not an operator (eq, ne, lt, le, gt, ge, masked_eq)",
					    syscall, args[i].op);
		cmp[i] = (struct scmp_arg_cmp){ .arg = args[i].index, .op = op,
						.datum_a = args[i].value, .datum_b = args[i].value2 };
	}
	/* The default's own action: nothing to add (libseccomp refuses it). */
	if (act == f->default_action)
		return 0;
	int r = seccomp_rule_add_array(f->ctx, act, nr, (unsigned)n_args, n_args ? cmp : NULL);
	if (r < 0)
		return pf_error_errno(err, -r, "seccomp: rule for %s", syscall);
	return 0;
}

int pf_seccomp_export(struct pf_seccomp *f, void **ret_buf, size_t *ret_len, struct pf_error *err)
{
	/* libseccomp 2.5 exports to an fd only (seccomp_export_bpf_mem is
	 * 2.6): a memfd, read back. */
	int fd = memfd_create("pflask-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return pf_error_errno(err, errno, "seccomp: memfd_create");
	int r = seccomp_export_bpf(f->ctx, fd);
	if (r < 0) {
		close(fd);
		return pf_error_errno(err, -r, "seccomp: export the filter");
	}
	off_t size = lseek(fd, 0, SEEK_END);
	if (size <= 0 || lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		return pf_error_set(err, EIO, "seccomp: export gave no program");
	}
	char *buf = malloc((size_t)size);
	if (!buf) {
		close(fd);
		return pf_error_errno(err, ENOMEM, "seccomp: export");
	}
	size_t got = 0;
	while (got < (size_t)size) {
		ssize_t n = read(fd, buf + got, (size_t)size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			free(buf);
			close(fd);
			return pf_error_errno(err, e, "seccomp: read the exported filter");
		}
		got += (size_t)n;
	}
	close(fd);
	*ret_buf = buf;
	*ret_len = got;
	return 0;
}

void pf_seccomp_free(struct pf_seccomp *f)
{
	if (!f)
		return;
	if (f->ctx)
		seccomp_release(f->ctx);
	free(f);
}
