#define _GNU_SOURCE
#include "sync.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int pf_sync_pair(int fds[2], struct pf_error *err)
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
		return pf_error_errno(err, errno, "sync channel: socketpair");
	return 0;
}

static ssize_t send_record(int fd, const struct pf_sync_record *rec)
{
	ssize_t n;
	do
		n = send(fd, rec, sizeof(*rec), MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n;
}

static ssize_t recv_record(int fd, struct pf_sync_record *rec)
{
	ssize_t n;
	do
		n = recv(fd, rec, sizeof(*rec), 0);
	while (n < 0 && errno == EINTR);
	return n;
}

int pf_sync_release(int fd, struct pf_error *err)
{
	struct pf_sync_record rec = { .kind = PF_SYNC_GO };
	if (send_record(fd, &rec) < 0)
		return pf_error_errno(err, errno, "sync channel: release child");
	return 0;
}

int pf_sync_wait(int fd, struct pf_error *err)
{
	struct pf_sync_record rec;
	ssize_t n = recv_record(fd, &rec);
	if (n < 0)
		return pf_error_errno(err, errno, "sync channel: wait for parent");
	if (n == 0)
		return pf_error_set(err, EPIPE, "sync channel: parent is gone");
	if (rec.kind != PF_SYNC_GO)
		return pf_error_set(err, EPROTO, "sync channel: unexpected record %d", rec.kind);
	return 0;
}

int pf_sync_report(int fd, int status, const struct pf_error *failure)
{
	struct pf_sync_record rec = {
		.kind = PF_SYNC_ERROR,
		.status = status,
		.code = failure->code,
	};
	memcpy(rec.message, failure->message, sizeof(rec.message));
	rec.message[sizeof(rec.message) - 1] = '\0';
	return send_record(fd, &rec) < 0 ? -1 : 0;
}

int pf_sync_ready(int fd)
{
	struct pf_sync_record rec = { .kind = PF_SYNC_READY };
	return send_record(fd, &rec) < 0 ? -1 : 0;
}

int pf_sync_result(int fd, struct pf_sync_record *ret_record, struct pf_error *err)
{
	ssize_t n = recv_record(fd, ret_record);
	if (n < 0) {
		/* The child died before it could send anything meaningful. */
		if (errno == ECONNRESET)
			return 0;
		return pf_error_errno(err, errno, "sync channel: wait for child");
	}
	if (n == 0)
		return 0;
	if ((size_t)n == sizeof(*ret_record) && ret_record->kind == PF_SYNC_READY)
		return 2;
	if ((size_t)n != sizeof(*ret_record) || ret_record->kind != PF_SYNC_ERROR)
		return pf_error_set(err, EPROTO, "sync channel: malformed record from child");
	ret_record->message[sizeof(ret_record->message) - 1] = '\0';
	return 1;
}
