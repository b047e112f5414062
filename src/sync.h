/* The parent/child barrier.
 *
 * A SOCK_SEQPACKET pair: the parent releases the child once it has done its
 * part from outside (id maps, interfaces, cgroups); the child reports a
 * failure as one fixed-size record and exits, or execs, which closes its
 * O_CLOEXEC end: end-of-file tells the parent the command started.
 *
 * The design asks that "go" not live only in the parent's memory (an OCI
 * `create` must be able to exit and let `start` release the child later):
 * the child end only ever waits for one record on an fd, so a later
 * issue can hand that fd to a FIFO or a socket bound to a path. */
#pragma once

#include <stdint.h>

#include "error.h"

enum pf_sync_kind {
	PF_SYNC_GO = 1,    /* parent -> child: carry on */
	PF_SYNC_ERROR = 2, /* child -> parent: failed, see status/code/message */
	PF_SYNC_READY = 3, /* child -> parent: created, waiting on its start FIFO */
};

struct pf_sync_record {
	int32_t kind;
	int32_t status; /* exit status pflask should end with (125, 126, 127) */
	int32_t code;   /* errno */
	char message[PF_ERROR_MESSAGE_MAX];
};

/* A connected pair, both O_CLOEXEC: fds[0] for the parent, fds[1] for the child. */
int pf_sync_pair(int fds[2], struct pf_error *err);

/* Parent: let the child go on. */
int pf_sync_release(int fd, struct pf_error *err);

/* Child: wait until the parent releases us. Returns 0 on go; -1 with
 * err->code == EPIPE when the parent is gone (the child should _exit). */
int pf_sync_wait(int fd, struct pf_error *err);

/* Child: send a failure record. Best effort: the child exits anyway. */
int pf_sync_report(int fd, int status, const struct pf_error *failure);

/* Child, in the command right before it blocks on its start FIFO: every
 * stage is done, the container is created. Async-signal-safe. */
int pf_sync_ready(int fd);

/* Parent: wait until the child has exec'd or failed. Returns 0 when the
 * channel closed without a record (success), 1 when a failure record was
 * stored in *ret_record, 2 when the child is created and waits for its
 * start FIFO (a PF_SYNC_READY record), -1 on a read error. */
int pf_sync_result(int fd, struct pf_sync_record *ret_record, struct pf_error *err);
