#define _GNU_SOURCE
#include "devices.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"

int pf_device_rule_parse(const char *line, struct pf_device_rule *rule,
			 struct pf_error *err)
{
	const char *p = line;
	memset(rule, 0, sizeof(*rule));
	if (*p != 'a' && *p != 'b' && *p != 'c')
		goto bad;
	rule->type = *p++;
	if (rule->type == 'a' && *p == '\0') {
		/* v1's bare "a": every device, every access. */
		rule->major = rule->minor = PF_DEVICE_ANY;
		rule->access = PF_DEVICE_MKNOD | PF_DEVICE_READ | PF_DEVICE_WRITE;
		return 0;
	}
	if (*p++ != ' ')
		goto bad;
	for (int i = 0; i < 2; i++) {
		long *num = i == 0 ? &rule->major : &rule->minor;
		if (*p == '*') {
			*num = PF_DEVICE_ANY;
			p++;
		} else {
			if (*p < '0' || *p > '9')
				goto bad;
			char *end;
			errno = 0;
			unsigned long v = strtoul(p, &end, 10);
			/* Majors have 12 bits and minors 20; a jump compares
			 * with a 32-bit immediate. */
			if (errno || v > (i == 0 ? 0xfffUL : 0xfffffUL))
				goto bad;
			*num = (long)v;
			p = end;
		}
		if (*p++ != (i == 0 ? ':' : ' '))
			goto bad;
	}
	for (; *p; p++) {
		unsigned bit = *p == 'r' ? PF_DEVICE_READ : *p == 'w' ? PF_DEVICE_WRITE :
			       *p == 'm' ? PF_DEVICE_MKNOD : 0;
		if (!bit || (rule->access & bit))
			goto bad;
		rule->access |= bit;
	}
	if (!rule->access)
		goto bad;
	return 0;
bad:
	return pf_error_set(err, EINVAL, "'%s' is not a device rule (TYPE MAJOR:MINOR ACCESS, as 'c 1:3 rwm')",
			    line);
}

/* The eBPF instruction set, the little of it the program needs (the
 * kernel's include/linux/filter.h macros, which uapi does not export). */
#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define LDX_W(dst, src, off) INSN(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
#define MOV32_REG(dst, src) INSN(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
#define ALU32_IMM(op, dst, imm) INSN(BPF_ALU | (op) | BPF_K, dst, 0, 0, imm)
#define MOV64_IMM(dst, imm) INSN(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
#define JNE_IMM(dst, imm, off) INSN(BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, imm)
#define JNE_REG(dst, src, off) INSN(BPF_JMP | BPF_JNE | BPF_X, dst, src, off, 0)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* Registers once the context is read: R2 the device type
 * (BPF_DEVCG_DEV_*), R3 the access asked (BPF_DEVCG_ACC_* bits), R4 the
 * major, R5 the minor; R1 is scratch. */
enum { R0, R1, R2, R3, R4, R5 };

#define MAX_RULES 256
#define MAX_INSNS (6 + MAX_RULES * 8 + 2)

/* Emit the program into prog; returns its length. Each rule is a block
 * that jumps to the next block on any mismatch and returns 1 (allow) when
 * everything matches; after the last block, 0 (deny). */
static size_t build_program(const struct pf_device_rule *rules, size_t n, struct bpf_insn *prog)
{
	size_t len = 0;
	/* struct bpf_cgroup_dev_ctx: access_type = ACC << 16 | DEV, major, minor. */
	prog[len++] = LDX_W(R2, R1, 0);
	prog[len++] = LDX_W(R4, R1, 4);
	prog[len++] = LDX_W(R5, R1, 8);
	prog[len++] = MOV32_REG(R3, R2);
	prog[len++] = ALU32_IMM(BPF_RSH, R3, 16);
	prog[len++] = ALU32_IMM(BPF_AND, R2, 0xffff);
	for (size_t i = 0; i < n; i++) {
		const struct pf_device_rule *r = &rules[i];
		const unsigned all = PF_DEVICE_MKNOD | PF_DEVICE_READ | PF_DEVICE_WRITE;
		/* Length of the block, for the jumps out of it. */
		size_t block = 2 + (r->type != 'a') + (r->access != all ? 3 : 0) +
			       (r->major != PF_DEVICE_ANY) + (r->minor != PF_DEVICE_ANY);
		size_t end = len + block; /* index of the next block */
#define TO_END() ((short)(end - (len + 1)))
		if (r->type != 'a') {
			int dev = r->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK;
			prog[len] = JNE_IMM(R2, dev, TO_END());
			len++;
		}
		if (r->access != all) {
			/* Allowed only if every access asked is in the rule. */
			prog[len++] = MOV32_REG(R1, R3);
			prog[len++] = ALU32_IMM(BPF_AND, R1, (int)r->access);
			prog[len] = JNE_REG(R1, R3, TO_END());
			len++;
		}
		if (r->major != PF_DEVICE_ANY) {
			prog[len] = JNE_IMM(R4, (int)r->major, TO_END());
			len++;
		}
		if (r->minor != PF_DEVICE_ANY) {
			prog[len] = JNE_IMM(R5, (int)r->minor, TO_END());
			len++;
		}
#undef TO_END
		prog[len++] = MOV64_IMM(R0, 1);
		prog[len++] = EXIT();
		/* A rule that matches everything ("a"): the rest could never
		 * run, and the verifier refuses unreachable instructions. */
		if (block == 2)
			return len;
	}
	prog[len++] = MOV64_IMM(R0, 0);
	prog[len++] = EXIT();
	return len;
}

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

int pf_devices_attach(const char *cgroup, const struct pf_device_rule *rules,
		      size_t n, struct pf_error *err)
{
	if (n > MAX_RULES)
		return pf_error_set(err, E2BIG, "%zu device rules, at most %d", n, MAX_RULES);
	struct bpf_insn prog[MAX_INSNS];
	size_t len = build_program(rules, n, prog);

	_cleanup_close_ int cgfd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0)
		return pf_error_errno(err, errno, "open %s", cgroup);

	union bpf_attr load;
	memset(&load, 0, sizeof(load));
	load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	load.insns = (uint64_t)(uintptr_t)prog;
	load.insn_cnt = (uint32_t)len;
	/* Calls no helper: the licence does not matter to the kernel. */
	load.license = (uint64_t)(uintptr_t)"BSD";
	strncpy(load.prog_name, "pflask_devices", sizeof(load.prog_name) - 1);
	/* Without the verifier's log: asking for one makes the load several
	 * times slower. It is asked for only to explain a refusal. */
	_cleanup_close_ int progfd = sys_bpf(BPF_PROG_LOAD, &load);
	if (progfd < 0) {
		int e = errno;
		char log[4096] = "";
		if (e == EINVAL || e == EACCES) {
			load.log_buf = (uint64_t)(uintptr_t)log;
			load.log_size = sizeof(log);
			load.log_level = 1;
			int fd = sys_bpf(BPF_PROG_LOAD, &load);
			if (fd >= 0)
				close(fd);
			char *nl = strchr(log, '\n');
			if (nl)
				*nl = '\0';
		}
		return pf_error_errno(err, e, "load BPF program%s%s", log[0] ? ": " : "", log);
	}
	/* The fd is O_CLOEXEC (the kernel makes BPF fds so); the attachment
	 * holds its own reference, this fd closes on return. */
	union bpf_attr attach;
	memset(&attach, 0, sizeof(attach));
	attach.target_fd = (uint32_t)cgfd;
	attach.attach_bpf_fd = (uint32_t)progfd;
	attach.attach_type = BPF_CGROUP_DEVICE;
	attach.attach_flags = BPF_F_ALLOW_MULTI;
	if (sys_bpf(BPF_PROG_ATTACH, &attach) < 0)
		return pf_error_errno(err, errno, "attach BPF program to %s", cgroup);
	return 0;
}
