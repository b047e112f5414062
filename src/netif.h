/* Network interfaces, addresses and routes over rtnetlink (libnl-route-3).
 *
 * Every function takes the network namespace to work in as nsfd: an open
 * /proc/PID/ns/net (or /run/netns/NAME), or -1 for the caller's own. A
 * netlink socket belongs to the namespace it was created in, so working in
 * another one is: setns into it, create the socket, setns back. No thread
 * is ever created; the caller must be single-threaded (it always is in
 * pflask) and hold CAP_SYS_ADMIN over the target namespace, which root on
 * the host has over a container's.
 *
 * Interfaces are named by name, or by index when name is NULL. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

#define PF_IFNAME_MAX 16 /* IFNAMSIZ, with the NUL */

struct pf_link_info {
	int index;
	char name[PF_IFNAME_MAX];
	char kind[32];     /* "veth", "macvlan", "bridge"...; "" for devices without one (physical, lo) */
	unsigned mtu;
	char address[64];  /* link-layer address, "" when none */
	bool up;           /* IFF_UP */
	int master;        /* index of the master (bridge), 0 when none */
	int link;          /* index of the lower device (macvlan, veth peer), 0 when none or unknown */
};

/* Open the network namespace of pid (when path is NULL) or the file path,
 * O_CLOEXEC. Returns the fd; the caller owns it. Keeping it open keeps the
 * namespace, and the virtual interfaces in it, alive. */
int pf_netns_open(pid_t pid, const char *path, struct pf_error *err);

/* Look an interface up. Returns 0, or -1 with err->code ENODEV when there
 * is no such interface. */
int pf_netif_get(int nsfd, const char *name, int index, struct pf_link_info *out,
		 struct pf_error *err);

/* Call fn for every interface, in index order. A non-zero return of fn
 * stops the walk and is returned. Returns 0, or -1 with err set. */
int pf_netif_list(int nsfd, int (*fn)(const struct pf_link_info *link, void *data), void *data,
		  struct pf_error *err);

struct pf_link_new {
	const char *kind;   /* "veth", "macvlan", "ipvlan", "dummy", "bridge", or any kind the kernel knows */
	const char *name;   /* the new interface */
	int target_nsfd;    /* where it is created, -1 for nsfd's namespace */
	const char *master; /* macvlan, ipvlan: the lower device, looked up in nsfd's namespace */
	const char *mode;   /* macvlan: private, vepa, bridge (default), passthru, source; ipvlan: l2 (default), l3, l3s */
	const char *peer;   /* veth: the other end */
	int peer_nsfd;      /* veth: where the other end is created, -1 for target_nsfd's namespace */
};

/* Create an interface (and, for a veth, both ends at once, each directly in
 * its namespace under its final name: nothing is half-created and no
 * temporary name is needed). Fails with EEXIST when a name is taken where it
 * would live. */
int pf_netif_add(int nsfd, const struct pf_link_new *spec, struct pf_error *err);

/* Delete an interface (a veth takes its peer with it). */
int pf_netif_del(int nsfd, const char *name, int index, struct pf_error *err);

struct pf_link_change {
	int target_nsfd;     /* >= 0: move the interface into this namespace */
	const char *name;    /* new name (with target_nsfd: the name it gets there) */
	int up;              /* 1 up, 0 down, -1 unchanged */
	unsigned mtu;        /* 0 unchanged */
	const char *address; /* link-layer address "02:00:..." or NULL */
	const char *master;  /* enslave to this bridge; "" releases; NULL unchanged */
};
#define PF_LINK_CHANGE_INIT { .target_nsfd = -1, .up = -1 }

/* Change an interface. A move and a rename go in one request, so the name
 * is only ever checked where the interface ends up; the move happens first,
 * the other changes then apply in the new namespace through a socket
 * there. */
int pf_netif_set(int nsfd, const char *name, int index, const struct pf_link_change *change,
		 struct pf_error *err);

/* Add or delete an address ("10.0.0.1/24", "fd00::1/64"; without a prefix
 * length, a host address) on interface dev. nodad: IPv6 addresses are
 * usable at once instead of after duplicate address detection. */
int pf_netif_addr(int nsfd, bool add, const char *dev, const char *cidr, bool nodad,
		  struct pf_error *err);

struct pf_route {
	const char *dst;     /* "default", "10.0.0.0/8", "fd00::/64" */
	const char *gateway; /* NULL for a route on the link */
	const char *dev;     /* NULL: let the kernel pick from the gateway */
	unsigned metric;     /* 0: none */
};

/* Add or delete a route in the main table. */
int pf_netif_route(int nsfd, bool add, const struct pf_route *route, struct pf_error *err);
