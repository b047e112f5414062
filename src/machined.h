/* Registration of containers with systemd-machined, over sd-bus.
 *
 * libsystemd is dlopen'ed on first use, as libmount is (libmount_lazy.h):
 * it pulls in liblzma, libzstd, liblz4 and libgcrypt, a cost no container
 * should pay unless the host runs machined. Built without sd-bus headers
 * (PF_HAVE_MACHINED undefined), every function fails with ENOSYS. Only the
 * supervisor calls these, never a process that has changed its root, so
 * the library loaded is always the host's. Each call opens its own bus
 * connection and closes it: nothing of sd-bus lives across a fork. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

/* Register a container of class "container" and service "pflask" whose
 * first process (as seen from the host) is leader and root directory
 * root ("" when it shares the host's). create_scope: CreateMachine,
 * which moves leader into a new scope unit of machine.slice and lets
 * machined forget the machine when that scope empties; otherwise
 * RegisterMachine, which leaves leader in the cgroups it is in (for
 * containers whose cgroups pflask placed itself). Blocks on the bus (bus
 * activation of machined included). Negative on failure, with err's code
 * an errno (EACCES for a caller machined refuses). */
int pf_machined_register(const char *name, pid_t leader, const char *root,
			 bool create_scope, struct pf_error *err);

/* Forget machine name (UnregisterMachine; its processes are left alone).
 * Negative on failure; err's code is ENOENT when machined does not know
 * the name (it already went away with its scope). */
int pf_machined_unregister(const char *name, struct pf_error *err);

/* Was pflask built with machined support. */
bool pf_machined_supported(void);
