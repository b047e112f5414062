/* Device policy on cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program,
 * written here instruction by instruction and loaded with raw bpf(2)
 * calls (no libbpf), that lets the processes of a cgroup create and open
 * only the device nodes a list of rules allows. On a v1 hierarchy the
 * devices controller takes the same rules as text (devices.allow); which
 * one applies is decided in Lua (pflask.cgroups). Parent side. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define PF_DEVICE_MKNOD 1u /* the kernel's BPF_DEVCG_ACC_* bits */
#define PF_DEVICE_READ 2u
#define PF_DEVICE_WRITE 4u
#define PF_DEVICE_ANY (-1L)

/* One allow rule, as a line of v1's devices.allow ("c 1:3 rwm"). */
struct pf_device_rule {
	char type;      /* 'c', 'b', or 'a' for both */
	long major;     /* PF_DEVICE_ANY for '*' */
	long minor;     /* PF_DEVICE_ANY for '*' */
	unsigned access; /* PF_DEVICE_* bits */
};

/* Parse one devices.allow line ("c 1:3 rwm", "b *:* m", "a") into rule.
 * Returns 0, or -1 (EINVAL) with a message naming the line. */
int pf_device_rule_parse(const char *line, struct pf_device_rule *rule,
			 struct pf_error *err);

/* Attach to the cgroup v2 directory cgroup a device program that allows
 * what one of the n rules allows and denies everything else. Attached with
 * BPF_F_ALLOW_MULTI: programs attached below (a booted systemd's own) run
 * too and can only deny more. The attachment lives as long as the cgroup
 * does; nothing to undo but removing the cgroup. Needs CAP_BPF or
 * CAP_SYS_ADMIN (root); EPERM otherwise. */
int pf_devices_attach(const char *cgroup, const struct pf_device_rule *rules,
		      size_t n, struct pf_error *err);
