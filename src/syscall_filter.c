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

/* A rule as pf_seccomp_add checked it, for pf_seccomp_export to hand to
 * libseccomp (or to find in the built-in programs without libseccomp). */
struct rule {
	uint32_t action;
	int nr;
	unsigned n_args;
	size_t name; /* offset in names */
	struct scmp_arg_cmp cmp[6];
};

struct pf_seccomp {
	scmp_filter_ctx ctx;
	uint32_t default_action;
	/* The architectures given to seccomp_arch_add, in order, and whether
	 * the native one was removed: part of the key. */
	uint32_t arches[16];
	size_t n_arches;
	int native_removed;
	struct rule *rules;
	size_t n_rules, rules_cap;
	int rules_added; /* given to libseccomp already */
	/* The rules' syscall names, NUL-separated: for the messages of
	 * pf_seccomp_export only. */
	char *names;
	size_t names_len, names_cap;
	/* pf_seccomp_key's, once computed; dropped by pf_seccomp_add. */
	unsigned char *key;
	size_t key_len;
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
	if (f->n_arches >= sizeof(f->arches) / sizeof(f->arches[0]))
		return pf_error_set(err, EINVAL, "seccomp: more than 16 architectures");
	f->arches[f->n_arches++] = token;
	int r = seccomp_arch_add(f->ctx, token);
	if (r < 0 && r != -EEXIST)
		return pf_error_errno(err, -r, "seccomp: add architecture %u", token);
	return 0;
}

struct pf_seccomp *pf_seccomp_new(const char *action, int errnum, const char *const *arches,
				  size_t n_arches, unsigned flags, struct pf_error *err)
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
	 * unfiltered entry point (int 0x80 on x86_64) is left open. Cheap,
	 * unlike the rules: done now, with libseccomp's checks of the
	 * default action and of the architectures, built-in program or not;
	 * libseccomp refuses KILL_PROCESS where the kernel lacks it (its
	 * own probe, whose answer the key records). */
	if ((flags & PF_SECCOMP_KILL_THREAD) ||
	    seccomp_attr_set(f->ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) < 0)
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
		if (!want_native) {
			if (seccomp_arch_remove(f->ctx, native) < 0) {
				pf_error_set(err, EINVAL, "seccomp: cannot leave out the native architecture");
				goto fail;
			}
			f->native_removed = 1;
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
	if (f->rules_added)
		return pf_error_set(err, EINVAL, "seccomp: rule for %s after the export", syscall);
	if (f->n_rules == f->rules_cap) {
		size_t cap = f->rules_cap ? 2 * f->rules_cap : 64;
		struct rule *r = reallocarray(f->rules, cap, sizeof(*r));
		if (!r)
			return pf_error_errno(err, ENOMEM, "seccomp: rule for %s", syscall);
		f->rules = r;
		f->rules_cap = cap;
	}
	size_t len = strlen(syscall) + 1;
	if (f->names_len + len > f->names_cap) {
		size_t cap = f->names_cap ? 2 * f->names_cap : 1024;
		while (cap < f->names_len + len)
			cap *= 2;
		char *n = realloc(f->names, cap);
		if (!n)
			return pf_error_errno(err, ENOMEM, "seccomp: rule for %s", syscall);
		f->names = n;
		f->names_cap = cap;
	}
	memcpy(f->names + f->names_len, syscall, len);
	free(f->key);
	f->key = NULL;
	struct rule *r = &f->rules[f->n_rules++];
	*r = (struct rule){ .action = act, .nr = nr, .n_args = (unsigned)n_args, .name = f->names_len };
	if (n_args)
		memcpy(r->cmp, cmp, n_args * sizeof(cmp[0]));
	f->names_len += len;
	return 0;
}

/* A byte buffer that grows; on allocation failure it stops growing and
 * remembers it. */
struct buf {
	unsigned char *p;
	size_t len, cap;
	int failed;
};

static void put(struct buf *b, const void *data, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 2048;
		while (cap < b->len + n)
			cap *= 2;
		unsigned char *p = realloc(b->p, cap);
		if (!p) {
			b->failed = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void put32(struct buf *b, uint32_t v)
{
	put(b, &v, sizeof(v));
}

static void put64(struct buf *b, uint64_t v)
{
	put(b, &v, sizeof(v));
}

/* Bumped when what the key covers changes. */
#define KEY_FORMAT 1

int pf_seccomp_key(struct pf_seccomp *f, const void **ret_key, size_t *ret_len, struct pf_error *err)
{
	if (f->key) {
		*ret_key = f->key;
		*ret_len = f->key_len;
		return 0;
	}
	struct buf b = { 0 };
	const struct scmp_version *v = seccomp_version();
	uint32_t badarch = 0;
	if (seccomp_attr_get(f->ctx, SCMP_FLTATR_ACT_BADARCH, &badarch) < 0)
		return pf_error_set(err, EINVAL, "seccomp: libseccomp has no bad-architecture action");
	/* What else shapes the program is libseccomp's defaults for the
	 * attributes pflask never sets (optimization level, TSKIP), fixed
	 * by its version. Host byte order: the key never leaves the
	 * machine that built the executable (no generator when cross
	 * compiling). */
	put(&b, "pflask-seccomp", 14);
	put32(&b, KEY_FORMAT);
	put32(&b, v ? v->major : 0);
	put32(&b, v ? v->minor : 0);
	put32(&b, v ? v->micro : 0);
	put32(&b, seccomp_arch_native());
	put32(&b, f->default_action);
	put32(&b, badarch);
	put32(&b, (uint32_t)f->n_arches);
	for (size_t i = 0; i < f->n_arches; i++)
		put32(&b, f->arches[i]);
	put32(&b, (uint32_t)f->native_removed);
	put64(&b, f->n_rules);
	for (size_t i = 0; i < f->n_rules; i++) {
		const struct rule *r = &f->rules[i];
		put32(&b, r->action);
		put32(&b, (uint32_t)r->nr);
		put32(&b, r->n_args);
		for (unsigned a = 0; a < r->n_args; a++) {
			put32(&b, r->cmp[a].arg);
			put32(&b, (uint32_t)r->cmp[a].op);
			put64(&b, r->cmp[a].datum_a);
			put64(&b, r->cmp[a].datum_b);
		}
	}
	if (b.failed) {
		free(b.p);
		return pf_error_errno(err, ENOMEM, "seccomp: key");
	}
	f->key = b.p;
	f->key_len = b.len;
	*ret_key = b.p;
	*ret_len = b.len;
	return 0;
}

static size_t builtin_count(void)
{
	return &pf_seccomp_builtin ? pf_seccomp_builtin.n_filters : 0;
}

/* Actions that libseccomp accepts on any kernel with seccomp filters:
 * the only ones a built-in program may stand for, since for the others
 * (log, kill_process) libseccomp asks the running kernel when a rule is
 * added, which the built-in path skips. (The default and bad-architecture
 * actions went through libseccomp in pf_seccomp_new.) */
static int kernel_independent(uint32_t action)
{
	return action == SCMP_ACT_ALLOW || action == SCMP_ACT_KILL_THREAD || action == SCMP_ACT_TRAP ||
	       (action & 0xffff0000u) == SCMP_ACT_ERRNO(0);
}

/* The built-in program for f, or NULL. */
static const struct pf_seccomp_builtin_filter *builtin_lookup(struct pf_seccomp *f, struct pf_error *err)
{
	if (builtin_count() == 0)
		return NULL;
	for (size_t i = 0; i < f->n_rules; i++)
		if (!kernel_independent(f->rules[i].action))
			return NULL;
	const void *key;
	size_t len;
	if (pf_seccomp_key(f, &key, &len, err) < 0)
		return NULL; /* compile instead */
	for (size_t i = 0; i < pf_seccomp_builtin.n_filters; i++) {
		const struct pf_seccomp_builtin_filter *b = &pf_seccomp_builtin.filters[i];
		if (b->key_len == len && memcmp(b->key, key, len) == 0)
			return b;
	}
	return NULL;
}

/* Hand the recorded rules to libseccomp. */
static int add_rules(struct pf_seccomp *f, struct pf_error *err)
{
	if (f->rules_added)
		return 0;
	for (size_t i = 0; i < f->n_rules; i++) {
		struct rule *r = &f->rules[i];
		int rc = seccomp_rule_add_array(f->ctx, r->action, r->nr, r->n_args, r->n_args ? r->cmp : NULL);
		if (rc < 0)
			return pf_error_errno(err, -rc, "seccomp: rule for %s", f->names + r->name);
	}
	f->rules_added = 1;
	return 0;
}

int pf_seccomp_export(struct pf_seccomp *f, unsigned flags, void **ret_buf, size_t *ret_len,
		      enum pf_seccomp_source *ret_source, struct pf_error *err)
{
	if (!(flags & PF_SECCOMP_NO_BUILTIN)) {
		struct pf_error ignored = { 0 };
		const struct pf_seccomp_builtin_filter *b = builtin_lookup(f, &ignored);
		if (b) {
			void *copy = malloc(b->bpf_len);
			if (!copy)
				return pf_error_errno(err, ENOMEM, "seccomp: export");
			memcpy(copy, b->bpf, b->bpf_len);
			*ret_buf = copy;
			*ret_len = b->bpf_len;
			if (ret_source)
				*ret_source = PF_SECCOMP_BUILTIN;
			return 0;
		}
	}
	if (add_rules(f, err) < 0)
		return -1;
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
	if (ret_source)
		*ret_source = PF_SECCOMP_COMPILED;
	return 0;
}

void pf_seccomp_free(struct pf_seccomp *f)
{
	if (!f)
		return;
	if (f->ctx)
		seccomp_release(f->ctx);
	free(f->rules);
	free(f->names);
	free(f->key);
	free(f);
}
