/* Network interfaces over rtnetlink with libnl-route-3 (see netif.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/if.h>
#include <linux/rtnetlink.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/ipvlan.h>
#include <netlink/route/link/macvlan.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>

#include "cleanup.h"
#include "netif.h"

/* libnl reports kernel errors as its own codes; turn them back into the
 * errno they most likely came from, so messages read like the rest of
 * pflask's ("No such device") and Lua gets a usable errno. */
static int nlerr_to_errno(int nlerr)
{
	switch (nlerr < 0 ? -nlerr : nlerr) {
	case NLE_EXIST: return EEXIST;
	case NLE_NOADDR: return EADDRNOTAVAIL;
	case NLE_OBJ_NOTFOUND: return ENOENT;
	case NLE_NODEV: return ENODEV;
	case NLE_INTR: return EINTR;
	case NLE_AGAIN: return EAGAIN;
	case NLE_NOACCESS: return EACCES;
	case NLE_PERM: return EPERM;
	case NLE_INVAL: return EINVAL;
	case NLE_NOMEM: return ENOMEM;
	case NLE_AF_NOSUPPORT: return EAFNOSUPPORT;
	case NLE_OPNOTSUPP: return EOPNOTSUPP;
	case NLE_BUSY: return EBUSY;
	case NLE_RANGE: return ERANGE;
	case NLE_MSGSIZE: return EMSGSIZE;
	case NLE_PROTO_MISMATCH: return EPROTONOSUPPORT;
	default: return EIO;
	}
}

static void sock_freep(struct nl_sock **sk)
{
	if (*sk)
		nl_socket_free(*sk);
}
static void link_putp(struct rtnl_link **l)
{
	if (*l)
		rtnl_link_put(*l);
}
static void addr_putp(struct nl_addr **a)
{
	if (*a)
		nl_addr_put(*a);
}
#define _cleanup_sock_ __attribute__((cleanup(sock_freep)))
#define _cleanup_link_ __attribute__((cleanup(link_putp)))
#define _cleanup_nladdr_ __attribute__((cleanup(addr_putp)))

int pf_netns_open(pid_t pid, const char *path, struct pf_error *err)
{
	char buf[64];
	if (!path) {
		snprintf(buf, sizeof(buf), "/proc/%d/ns/net", (int)pid);
		path = buf;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return pf_error_errno(err, errno, "open network namespace `%s`", path);
	return fd;
}

/* A connected rtnetlink socket in nsfd's namespace (ours when -1). */
static struct nl_sock *open_sock(int nsfd, struct pf_error *err)
{
	_cleanup_sock_ struct nl_sock *sk = nl_socket_alloc();
	if (!sk) {
		pf_error_errno(err, ENOMEM, "netlink socket");
		return NULL;
	}
	if (nsfd < 0) {
		int r = nl_connect(sk, NETLINK_ROUTE);
		if (r < 0) {
			pf_error_errno(err, nlerr_to_errno(r), "netlink socket");
			return NULL;
		}
		return take_ptr(sk);
	}
	_cleanup_close_ int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0) {
		pf_error_errno(err, errno, "open `/proc/self/ns/net`");
		return NULL;
	}
	if (setns(nsfd, CLONE_NEWNET) < 0) {
		pf_error_errno(err, errno, "enter network namespace");
		return NULL;
	}
	int r = nl_connect(sk, NETLINK_ROUTE);
	/* Going back into the namespace we were just in cannot fail short of
	 * a kernel bug; carrying on in the container's network would be far
	 * worse than stopping. */
	if (setns(self, CLONE_NEWNET) < 0)
		abort();
	if (r < 0) {
		pf_error_errno(err, nlerr_to_errno(r), "netlink socket in network namespace");
		return NULL;
	}
	return take_ptr(sk);
}

static const char *describe(const char *name, int index, char *buf, size_t size)
{
	if (name)
		return name;
	snprintf(buf, size, "#%d", index);
	return buf;
}

static struct rtnl_link *get_link(struct nl_sock *sk, const char *name, int index,
				  struct pf_error *err)
{
	struct rtnl_link *link = NULL;
	int r = rtnl_link_get_kernel(sk, name ? 0 : index, name, &link);
	if (r < 0) {
		char b[16];
		int e = nlerr_to_errno(r);
		if (e == ENOENT)
			e = ENODEV;
		pf_error_errno(err, e, "interface `%s`", describe(name, index, b, sizeof(b)));
		return NULL;
	}
	return link;
}

static void fill_info(struct rtnl_link *link, struct pf_link_info *out)
{
	memset(out, 0, sizeof(*out));
	out->index = rtnl_link_get_ifindex(link);
	snprintf(out->name, sizeof(out->name), "%s", rtnl_link_get_name(link) ? rtnl_link_get_name(link) : "");
	const char *kind = rtnl_link_get_type(link);
	snprintf(out->kind, sizeof(out->kind), "%s", kind ? kind : "");
	out->mtu = rtnl_link_get_mtu(link);
	struct nl_addr *a = rtnl_link_get_addr(link);
	if (a && nl_addr_get_len(a) > 0)
		nl_addr2str(a, out->address, sizeof(out->address));
	out->up = (rtnl_link_get_flags(link) & IFF_UP) != 0;
	out->master = rtnl_link_get_master(link);
	out->link = rtnl_link_get_link(link);
}

int pf_netif_get(int nsfd, const char *name, int index, struct pf_link_info *out,
		 struct pf_error *err)
{
	_cleanup_sock_ struct nl_sock *sk = open_sock(nsfd, err);
	if (!sk)
		return -1;
	_cleanup_link_ struct rtnl_link *link = get_link(sk, name, index, err);
	if (!link)
		return -1;
	fill_info(link, out);
	return 0;
}

int pf_netif_list(int nsfd, int (*fn)(const struct pf_link_info *link, void *data), void *data,
		  struct pf_error *err)
{
	_cleanup_sock_ struct nl_sock *sk = open_sock(nsfd, err);
	if (!sk)
		return -1;
	struct nl_cache *cache = NULL;
	int r = rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache);
	if (r < 0)
		return pf_error_errno(err, nlerr_to_errno(r), "list interfaces");
	int ret = 0;
	for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		struct pf_link_info info;
		fill_info((struct rtnl_link *)o, &info);
		ret = fn(&info, data);
		if (ret)
			break;
	}
	nl_cache_free(cache);
	return ret;
}

static int ifindex_of(struct nl_sock *sk, const char *name, struct pf_error *err)
{
	_cleanup_link_ struct rtnl_link *link = get_link(sk, name, 0, err);
	return link ? rtnl_link_get_ifindex(link) : -1;
}

int pf_netif_add(int nsfd, const struct pf_link_new *spec, struct pf_error *err)
{
	if (!spec->kind || !spec->name)
		return pf_error_set(err, EINVAL, "new interface: kind and name are required");
	_cleanup_sock_ struct nl_sock *sk = open_sock(nsfd, err);
	if (!sk)
		return -1;
	_cleanup_link_ struct rtnl_link *link = NULL;
	bool is_macvlan = strcmp(spec->kind, "macvlan") == 0;
	bool is_ipvlan = strcmp(spec->kind, "ipvlan") == 0;
	bool is_veth = strcmp(spec->kind, "veth") == 0;
	if (is_veth) {
		if (!spec->peer)
			return pf_error_set(err, EINVAL, "veth `%s`: no peer name", spec->name);
		link = rtnl_link_veth_alloc();
	} else if (is_macvlan) {
		link = rtnl_link_macvlan_alloc();
	} else if (is_ipvlan) {
		link = rtnl_link_ipvlan_alloc();
	} else {
		link = rtnl_link_alloc();
		if (link && rtnl_link_set_type(link, spec->kind) < 0)
			return pf_error_set(err, EOPNOTSUPP, "`%s`: unknown interface kind", spec->kind);
	}
	if (!link)
		return pf_error_errno(err, ENOMEM, "interface `%s`", spec->name);
	rtnl_link_set_name(link, spec->name);
	if (spec->target_nsfd >= 0)
		rtnl_link_set_ns_fd(link, spec->target_nsfd);
	if (is_macvlan || is_ipvlan) {
		if (!spec->master)
			return pf_error_set(err, EINVAL, "%s `%s`: no master", spec->kind, spec->name);
		int master = ifindex_of(sk, spec->master, err);
		if (master < 0)
			return -1;
		rtnl_link_set_link(link, master);
		const char *mode = spec->mode ? spec->mode : (is_macvlan ? "bridge" : "l2");
		int m = is_macvlan ? rtnl_link_macvlan_str2mode(mode) : rtnl_link_ipvlan_str2mode(mode);
		if (m < 0)
			return pf_error_set(err, EINVAL, "%s `%s`: '%s' is not a mode", spec->kind,
					    spec->name, mode);
		if ((is_macvlan ? rtnl_link_macvlan_set_mode(link, (uint32_t)m)
				: rtnl_link_ipvlan_set_mode(link, (uint16_t)m)) < 0)
			return pf_error_set(err, EINVAL, "%s `%s`: cannot set mode", spec->kind, spec->name);
	} else if (spec->master) {
		int master = ifindex_of(sk, spec->master, err);
		if (master < 0)
			return -1;
		rtnl_link_set_link(link, master);
	}
	if (is_veth) {
		struct rtnl_link *peer = rtnl_link_veth_get_peer(link); /* a new reference */
		rtnl_link_set_name(peer, spec->peer);
		int peer_ns = spec->peer_nsfd >= 0 ? spec->peer_nsfd : spec->target_nsfd;
		if (peer_ns >= 0)
			rtnl_link_set_ns_fd(peer, peer_ns);
		rtnl_link_put(peer);
	}
	int r = rtnl_link_add(sk, link, NLM_F_CREATE | NLM_F_EXCL);
	if (r < 0) {
		if (is_veth)
			return pf_error_errno(err, nlerr_to_errno(r), "create veth `%s`/`%s`", spec->name,
					      spec->peer);
		return pf_error_errno(err, nlerr_to_errno(r), "create %s `%s`", spec->kind, spec->name);
	}
	return 0;
}

int pf_netif_del(int nsfd, const char *name, int index, struct pf_error *err)
{
	_cleanup_sock_ struct nl_sock *sk = open_sock(nsfd, err);
	if (!sk)
		return -1;
	_cleanup_link_ struct rtnl_link *link = get_link(sk, name, index, err);
	if (!link)
		return -1;
	int r = rtnl_link_delete(sk, link);
	if (r < 0)
		return pf_error_errno(err, nlerr_to_errno(r), "delete interface `%s`",
				      rtnl_link_get_name(link));
	return 0;
}

/* Send one change request for link. */
static int change_link(struct nl_sock *sk, struct rtnl_link *orig, struct rtnl_link *changes,
		       const char *what, struct pf_error *err)
{
	int r = rtnl_link_change(sk, orig, changes, 0);
	if (r < 0)
		return pf_error_errno(err, nlerr_to_errno(r), "%s `%s`", what, rtnl_link_get_name(orig));
	return 0;
}

int pf_netif_set(int nsfd, const char *name, int index, const struct pf_link_change *c,
		 struct pf_error *err)
{
	_cleanup_sock_ struct nl_sock *sk = open_sock(nsfd, err);
	if (!sk)
		return -1;
	_cleanup_link_ struct rtnl_link *orig = get_link(sk, name, index, err);
	if (!orig)
		return -1;
	int ifindex = rtnl_link_get_ifindex(orig);

	if (c->target_nsfd >= 0) {
		_cleanup_link_ struct rtnl_link *move = rtnl_link_alloc();
		if (!move)
			return pf_error_errno(err, ENOMEM, "move interface");
		rtnl_link_set_ns_fd(move, c->target_nsfd);
		if (c->name)
			rtnl_link_set_name(move, c->name);
		if (change_link(sk, orig, move, "move interface", err) < 0)
			return -1;
		/* The rest happens where it now lives; the kernel keeps the
		 * index unless it is taken there, so look it up by name. */
		nl_socket_free(sk);
		sk = open_sock(c->target_nsfd, err);
		if (!sk)
			return -1;
		rtnl_link_put(orig);
		orig = get_link(sk, c->name ? c->name : name, c->name || name ? 0 : ifindex, err);
		if (!orig)
			return -1;
	}

	_cleanup_link_ struct rtnl_link *changes = rtnl_link_alloc();
	if (!changes)
		return pf_error_errno(err, ENOMEM, "change interface");
	bool any = false;
	if (c->name && c->target_nsfd < 0) {
		rtnl_link_set_name(changes, c->name);
		any = true;
	}
	if (c->mtu) {
		rtnl_link_set_mtu(changes, c->mtu);
		any = true;
	}
	if (c->address) {
		_cleanup_nladdr_ struct nl_addr *a = NULL;
		if (nl_addr_parse(c->address, AF_LLC, &a) < 0)
			return pf_error_set(err, EINVAL, "'%s' is not a link-layer address", c->address);
		rtnl_link_set_addr(changes, a);
		any = true;
	}
	if (c->master) {
		int master = 0;
		if (*c->master) {
			master = ifindex_of(sk, c->master, err);
			if (master < 0)
				return -1;
		}
		rtnl_link_set_master(changes, master);
		any = true;
	}
	if (any && change_link(sk, orig, changes, "change interface", err) < 0)
		return -1;
	/* Up last, once the address and MTU are what they should be. */
	if (c->up >= 0) {
		_cleanup_link_ struct rtnl_link *flags = rtnl_link_alloc();
		if (!flags)
			return pf_error_errno(err, ENOMEM, "change interface");
		if (c->up)
			rtnl_link_set_flags(flags, IFF_UP);
		else
			rtnl_link_unset_flags(flags, IFF_UP);
		if (c->name && c->target_nsfd < 0)
			rtnl_link_set_name(orig, c->name); /* keep the message's name right */
		if (change_link(sk, orig, flags, c->up ? "bring up" : "bring down", err) < 0)
			return -1;
	}
	return 0;
}

int pf_netif_addr(int nsfd, bool add, const char *dev, const char *cidr, bool nodad,
		  struct pf_error *err)
{
	_cleanup_nladdr_ struct nl_addr *local = NULL;
	if (nl_addr_parse(cidr, AF_UNSPEC, &local) < 0 ||
	    (nl_addr_get_family(local) != AF_INET && nl_addr_get_family(local) != AF_INET6))
		return pf_error_set(err, EINVAL, "'%s' is not an IPv4 or IPv6 address", cidr);
	_cleanup_sock_ struct nl_sock *sk = open_sock(nsfd, err);
	if (!sk)
		return -1;
	int ifindex = ifindex_of(sk, dev, err);
	if (ifindex < 0)
		return -1;
	struct rtnl_addr *addr = rtnl_addr_alloc();
	if (!addr)
		return pf_error_errno(err, ENOMEM, "address");
	rtnl_addr_set_ifindex(addr, ifindex);
	int r = rtnl_addr_set_local(addr, local);
	if (r >= 0 && nodad && nl_addr_get_family(local) == AF_INET6)
		rtnl_addr_set_flags(addr, IFA_F_NODAD);
	if (r >= 0)
		r = add ? rtnl_addr_add(sk, addr, NLM_F_CREATE | NLM_F_EXCL) : rtnl_addr_delete(sk, addr, 0);
	rtnl_addr_put(addr);
	if (r < 0)
		return pf_error_errno(err, nlerr_to_errno(r), "%s address %s on `%s`",
				      add ? "add" : "delete", cidr, dev);
	return 0;
}

int pf_netif_route(int nsfd, bool add, const struct pf_route *rt, struct pf_error *err)
{
	const char *dst = rt->dst ? rt->dst : "default";
	_cleanup_nladdr_ struct nl_addr *gw = NULL;
	_cleanup_nladdr_ struct nl_addr *d = NULL;
	int family = AF_UNSPEC;
	if (rt->gateway) {
		if (nl_addr_parse(rt->gateway, AF_UNSPEC, &gw) < 0 ||
		    (nl_addr_get_family(gw) != AF_INET && nl_addr_get_family(gw) != AF_INET6))
			return pf_error_set(err, EINVAL, "route: '%s' is not a gateway address", rt->gateway);
		family = nl_addr_get_family(gw);
	}
	bool is_default = strcmp(dst, "default") == 0;
	if (is_default) {
		if (family == AF_UNSPEC)
			family = AF_INET;
		if (nl_addr_parse(family == AF_INET ? "0.0.0.0/0" : "::/0", family, &d) < 0)
			return pf_error_set(err, EINVAL, "route: default");
	} else {
		if (nl_addr_parse(dst, AF_UNSPEC, &d) < 0 ||
		    (nl_addr_get_family(d) != AF_INET && nl_addr_get_family(d) != AF_INET6))
			return pf_error_set(err, EINVAL, "route: '%s' is not a destination", dst);
		if (family != AF_UNSPEC && family != nl_addr_get_family(d))
			return pf_error_set(err, EINVAL, "route: %s and gateway %s are not the same family",
					    dst, rt->gateway);
		family = nl_addr_get_family(d);
	}
	if (!rt->gateway && !rt->dev)
		return pf_error_set(err, EINVAL, "route %s: needs a gateway or a device", dst);
	_cleanup_sock_ struct nl_sock *sk = open_sock(nsfd, err);
	if (!sk)
		return -1;
	int ifindex = 0;
	if (rt->dev) {
		ifindex = ifindex_of(sk, rt->dev, err);
		if (ifindex < 0)
			return -1;
	}
	struct rtnl_route *route = rtnl_route_alloc();
	struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
	if (!route || !nh) {
		if (route)
			rtnl_route_put(route);
		if (nh)
			rtnl_route_nh_free(nh);
		return pf_error_errno(err, ENOMEM, "route");
	}
	rtnl_route_set_family(route, (uint8_t)family);
	rtnl_route_set_dst(route, d);
	rtnl_route_set_table(route, RT_TABLE_MAIN);
	rtnl_route_set_type(route, RTN_UNICAST);
	if (add) {
		rtnl_route_set_protocol(route, RTPROT_BOOT);
		rtnl_route_set_scope(route, rt->gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK);
	} else {
		/* Left unset, libnl sends protocol "static", which our "boot"
		 * routes do not match; unspec and scope "nowhere" match any. */
		rtnl_route_set_protocol(route, RTPROT_UNSPEC);
		rtnl_route_set_scope(route, RT_SCOPE_NOWHERE);
	}
	if (rt->metric)
		rtnl_route_set_priority(route, rt->metric);
	if (ifindex)
		rtnl_route_nh_set_ifindex(nh, ifindex);
	if (gw)
		rtnl_route_nh_set_gateway(nh, gw);
	rtnl_route_add_nexthop(route, nh); /* the route owns nh now */
	int r = add ? rtnl_route_add(sk, route, NLM_F_CREATE | NLM_F_EXCL) : rtnl_route_delete(sk, route, 0);
	rtnl_route_put(route);
	if (r < 0)
		return pf_error_errno(err, nlerr_to_errno(r), "%s route %s%s%s", add ? "add" : "delete",
				      dst, rt->gateway ? " via " : "", rt->gateway ? rt->gateway : "");
	return 0;
}
