#define _GNU_SOURCE
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"

int pf_cgroup_create(const char *path, struct pf_error *err)
{
	if (mkdir(path, 0755) < 0)
		return pf_error_errno(err, errno, "create cgroup %s", path);
	return 0;
}

int pf_cgroup_write(const char *path, const char *file, const char *value,
		    struct pf_error *err)
{
	char name[PATH_MAX];
	if (snprintf(name, sizeof(name), "%s/%s", path, file) >= (int)sizeof(name))
		return pf_error_set(err, ENAMETOOLONG, "%s/%s: path too long", path, file);
	_cleanup_close_ int fd = open(name, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return pf_error_errno(err, errno, "open %s", name);
	size_t len = strlen(value);
	ssize_t n = write(fd, value, len);
	if (n < 0)
		return pf_error_errno(err, errno, "write '%s' to %s", value, name);
	if ((size_t)n != len)
		return pf_error_set(err, EIO, "write '%s' to %s: short write", value, name);
	return 0;
}

int pf_cgroup_attach(const char *path, pid_t pid, struct pf_error *err)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	return pf_cgroup_write(path, "cgroup.procs", buf, err);
}

/* SIGKILL whatever lives in one cgroup directory (not below it). */
static void kill_members(const char *path)
{
	char name[PATH_MAX];
	snprintf(name, sizeof(name), "%s/cgroup.kill", path);
	_cleanup_close_ int kfd = open(name, O_WRONLY | O_CLOEXEC);
	if (kfd >= 0 && write(kfd, "1", 1) == 1)
		return;
	snprintf(name, sizeof(name), "%s/cgroup.procs", path);
	FILE *f = fopen(name, "re");
	if (!f)
		return;
	int pid;
	while (fscanf(f, "%d", &pid) == 1)
		if (pid > 1 && pid != getpid())
			kill(pid, SIGKILL);
	fclose(f);
}

static int remove_tree(const char *path, bool kill, struct pf_error *err)
{
	DIR *d = opendir(path);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		return pf_error_errno(err, errno, "open cgroup %s", path);
	}
	struct dirent *e;
	int r = 0;
	while ((e = readdir(d))) {
		if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char sub[PATH_MAX];
		if (snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) >= (int)sizeof(sub))
			continue;
		if (remove_tree(sub, kill, err) < 0)
			r = -1;
	}
	closedir(d);
	if (r < 0)
		return r;

	/* Killed processes leave the cgroup only once fully gone. */
	for (int attempt = 0;; attempt++) {
		if (rmdir(path) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY || !kill || attempt >= 200)
			return pf_error_errno(err, errno, "remove cgroup %s", path);
		kill_members(path);
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

int pf_cgroup_remove(const char *path, bool kill, struct pf_error *err)
{
	return remove_tree(path, kill, err);
}

/* What the magic semaphore holds once the set is ready ('PF'). */
#define CENSUS_MAGIC 0x5046

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

int pf_census_open(const char *dir, bool *ret_created, struct pf_error *err)
{
	return pf_census_open_kind(dir, 'c', ret_created, err);
}

int pf_census_open_kind(const char *dir, int proj, bool *ret_created, struct pf_error *err)
{
	*ret_created = false;
	key_t key = ftok(dir, proj);
	if (key == -1)
		return pf_error_errno(err, errno, "census of %s", dir);
	int id = semget(key, PF_CENSUS_NSEMS, IPC_CREAT | IPC_EXCL | 0600);
	if (id >= 0) {
		unsigned short init[PF_CENSUS_NSEMS] = { 0 };
		init[PF_CENSUS_MUTEX] = 1;
		init[PF_CENSUS_MAGIC] = CENSUS_MAGIC;
		if (semctl(id, 0, SETALL, (union semun){ .array = init }) < 0)
			return pf_error_errno(err, errno, "census of %s: initialize", dir);
		*ret_created = true;
		return id;
	}
	if (errno != EEXIST)
		return pf_error_errno(err, errno, "census of %s", dir);
	id = semget(key, 0, 0);
	if (id < 0)
		return pf_error_errno(err, errno, "census of %s", dir);
	/* Ours only if we made it as we make it: anybody else's set (a key
	 * that collides, a set planted to blind the sweep) is not trusted. */
	struct semid_ds ds;
	if (semctl(id, 0, IPC_STAT, (union semun){ .buf = &ds }) < 0)
		return pf_error_errno(err, errno, "census of %s", dir);
	uid_t me = geteuid();
	if (ds.sem_perm.uid != me || ds.sem_perm.cuid != me || (ds.sem_perm.mode & 0777) != 0600 ||
	    ds.sem_nsems != PF_CENSUS_NSEMS)
		return pf_error_set(err, EPERM, "census of %s: semaphore set %d is not pflask's", dir, id);
	/* Its maker may not have set it up yet (a start racing the first). */
	for (int i = 0; i < 100; i++) {
		int magic = semctl(id, PF_CENSUS_MAGIC, GETVAL);
		if (magic < 0)
			return pf_error_errno(err, errno, "census of %s", dir);
		if (magic == CENSUS_MAGIC)
			return id;
		struct timespec ts = { 0, 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return pf_error_set(err, EPERM, "census of %s: semaphore set %d is not pflask's", dir, id);
}

int pf_census_join(int id, int delta, struct pf_error *err)
{
	struct sembuf ops[2] = {
		{ PF_CENSUS_LIVE, (short)delta, SEM_UNDO | IPC_NOWAIT },
		{ PF_CENSUS_REGISTERED, (short)delta, IPC_NOWAIT },
	};
	while (semop(id, ops, 2) < 0) {
		if (errno != EINTR)
			return pf_error_errno(err, errno, "census: %s", delta > 0 ? "join" : "leave");
	}
	return 0;
}

int pf_census_deaths(int id, int *ret, struct pf_error *err)
{
	unsigned short v[PF_CENSUS_NSEMS];
	if (semctl(id, 0, GETALL, (union semun){ .array = v }) < 0)
		return pf_error_errno(err, errno, "census: read");
	*ret = (int)v[PF_CENSUS_REGISTERED] - (int)v[PF_CENSUS_LIVE];
	return 0;
}

int pf_census_lock(int id, bool lock, struct pf_error *err)
{
	struct sembuf op = { PF_CENSUS_MUTEX, (short)(lock ? -1 : 1), SEM_UNDO };
	/* A sweep takes milliseconds; a holder stopped in the middle (^Z, a
	 * debugger) must not hang every start: after a while, EAGAIN, and the
	 * caller leaves the sweep to a later start. */
	struct timespec wait = { 2, 0 };
	while (semtimedop(id, &op, 1, lock ? &wait : NULL) < 0) {
		if (errno != EINTR)
			return pf_error_errno(err, errno, "census: %s", lock ? "lock" : "unlock");
	}
	return 0;
}

int pf_census_settle(int id, int n, struct pf_error *err)
{
	if (n <= 0)
		return 0;
	struct sembuf op = { PF_CENSUS_REGISTERED, (short)-n, IPC_NOWAIT };
	if (semop(id, &op, 1) < 0)
		return pf_error_errno(err, errno, "census: settle");
	return 0;
}
