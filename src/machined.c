#define _GNU_SOURCE
#include "machined.h"

#include <errno.h>
#include <string.h>

#ifdef PF_HAVE_MACHINED

#include <dlfcn.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#ifndef PF_LIBSYSTEMD_SONAME
#define PF_LIBSYSTEMD_SONAME "libsystemd.so.0"
#endif

#define MACHINED_DEST "org.freedesktop.machine1"
#define MACHINED_PATH "/org/freedesktop/machine1"
#define MACHINED_IFACE "org.freedesktop.machine1.Manager"

static struct {
	int (*open_system)(sd_bus **ret);
	int (*call_method)(sd_bus *bus, const char *destination, const char *path,
			   const char *interface, const char *member, sd_bus_error *ret_error,
			   sd_bus_message **reply, const char *types, ...);
	sd_bus_message *(*message_unref)(sd_bus_message *m);
	sd_bus *(*flush_close_unref)(sd_bus *bus);
	void (*error_free)(sd_bus_error *e);
	int (*error_get_errno)(const sd_bus_error *e);
} sd;
static bool loaded;

static int load(struct pf_error *err)
{
	if (loaded)
		return 0;
	void *h = dlopen(PF_LIBSYSTEMD_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return pf_error_set(err, ELIBACC, "load %s: %s", PF_LIBSYSTEMD_SONAME, dlerror());
	struct {
		const char *name;
		void **slot;
	} syms[] = {
		{ "sd_bus_open_system", (void **)&sd.open_system },
		{ "sd_bus_call_method", (void **)&sd.call_method },
		{ "sd_bus_message_unref", (void **)&sd.message_unref },
		{ "sd_bus_flush_close_unref", (void **)&sd.flush_close_unref },
		{ "sd_bus_error_free", (void **)&sd.error_free },
		{ "sd_bus_error_get_errno", (void **)&sd.error_get_errno },
	};
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		*syms[i].slot = dlsym(h, syms[i].name);
		if (!*syms[i].slot) {
			pf_error_set(err, ELIBBAD, "%s has no %s", PF_LIBSYSTEMD_SONAME, syms[i].name);
			dlclose(h);
			return -1;
		}
	}
	/* Never closed: the functions stay valid for the process' life. */
	loaded = true;
	return 0;
}

static int open_bus(sd_bus **ret, struct pf_error *err)
{
	if (load(err) < 0)
		return -1;
	int r = sd.open_system(ret);
	if (r < 0)
		return pf_error_errno(err, -r, "connect to the system bus");
	return 0;
}

/* The failure of a call, as "what: D-Bus message"; the errno sd-bus
 * derives from the error name, ENOENT for an unknown machine. */
static int call_failed(const char *what, int r, sd_bus_error *e, struct pf_error *err)
{
	int code = -r;
	if (e->name && strcmp(e->name, "org.freedesktop.machine1.NoSuchMachine") == 0)
		code = ENOENT;
	else if (e->name)
		code = sd.error_get_errno(e);
	if (code <= 0)
		code = EIO;
	if (e->message)
		pf_error_set(err, code, "%s: %s", what, e->message);
	else
		pf_error_errno(err, code, "%s", what);
	sd.error_free(e);
	return -1;
}

int pf_machined_register(const char *name, pid_t leader, const char *root,
			 bool create_scope, struct pf_error *err)
{
	sd_bus *bus = NULL;
	if (open_bus(&bus, err) < 0)
		return -1;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	int r;
	/* id: empty, machined has none to check; then service and class. */
	if (create_scope)
		r = sd.call_method(bus, MACHINED_DEST, MACHINED_PATH, MACHINED_IFACE, "CreateMachine",
				   &e, &reply, "sayssusa(sv)", name, 0, "pflask", "container",
				   (uint32_t)leader, root, 0);
	else
		r = sd.call_method(bus, MACHINED_DEST, MACHINED_PATH, MACHINED_IFACE, "RegisterMachine",
				   &e, &reply, "sayssus", name, 0, "pflask", "container",
				   (uint32_t)leader, root);
	if (r < 0)
		call_failed(create_scope ? "CreateMachine" : "RegisterMachine", r, &e, err);
	sd.message_unref(reply);
	sd.flush_close_unref(bus);
	return r < 0 ? -1 : 0;
}

int pf_machined_unregister(const char *name, struct pf_error *err)
{
	sd_bus *bus = NULL;
	if (open_bus(&bus, err) < 0)
		return -1;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	int r = sd.call_method(bus, MACHINED_DEST, MACHINED_PATH, MACHINED_IFACE, "UnregisterMachine",
			       &e, NULL, "s", name);
	if (r < 0)
		call_failed("UnregisterMachine", r, &e, err);
	sd.flush_close_unref(bus);
	return r < 0 ? -1 : 0;
}

bool pf_machined_supported(void)
{
	return true;
}

#else /* !PF_HAVE_MACHINED */

int pf_machined_register(const char *name, pid_t leader, const char *root,
			 bool create_scope, struct pf_error *err)
{
	return pf_error_set(err, ENOSYS, "pflask was built without machined support");
}

int pf_machined_unregister(const char *name, struct pf_error *err)
{
	return pf_error_set(err, ENOSYS, "pflask was built without machined support");
}

bool pf_machined_supported(void)
{
	return false;
}

#endif
