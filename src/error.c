#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void format_into(struct pf_error *err, const char *fmt, va_list ap)
{
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
}

int pf_error_errno(struct pf_error *err, int errnum, const char *fmt, ...)
{
	if (!err)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	format_into(err, fmt, ap);
	va_end(ap);
	size_t used = strlen(err->message);
	snprintf(err->message + used, sizeof(err->message) - used, ": %s",
		 strerror(errnum));
	err->code = errnum;
	return -1;
}

int pf_error_set(struct pf_error *err, int errnum, const char *fmt, ...)
{
	if (!err)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	format_into(err, fmt, ap);
	va_end(ap);
	err->code = errnum;
	return -1;
}
