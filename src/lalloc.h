/* The Lua allocator of the pflask executable (issue 15: the memory of a
 * running container's supervisor). Small objects (up to PF_LALLOC_SMALL
 * bytes, nearly all of a Lua state) are cut from 64 KiB blocks, with one
 * free list per size (8-byte steps) and no header: Lua passes the size
 * back on free. Strings, the other collected objects and arrays lie on
 * pages of their own kind. Larger ones go to malloc. pf_lalloc_trim gives
 * the pages no live object touches back to the kernel (it adds up the
 * free slots then: nothing is counted while Lua runs), and later
 * allocations take them again first.
 *
 * Why not malloc: glibc's per-thread cache keeps up to 7 freed chunks of
 * every size up to 1 KiB apart from the rest, and they neither coalesce
 * nor serve other sizes; with the 8-16 bytes of header per chunk, a Lua
 * state of ~250 KiB of live objects held ~480 KiB of heap, the largest
 * part of a running container's memory. */
#pragma once

#include <stddef.h>

#define PF_LALLOC_SMALL 1024

struct pf_lalloc;

/* A lua_Alloc (lua_newstate(pf_lalloc, a)): ud is the allocator from
 * pf_lalloc_new, Lua's from the state's creation on (the size Lua passes
 * tells whose a block is: up to PF_LALLOC_SMALL bytes, its own). Never
 * raises; NULL when out of memory, the old block untouched, but a shrink
 * never fails. Not thread-safe (pflask has no threads). */
void *pf_lalloc(void *ud, void *ptr, size_t osize, size_t nsize);

/* A new allocator, NULL when out of memory. It lives as long as the
 * process (no free: the state it serves may outlive main's frame). */
struct pf_lalloc *pf_lalloc_new(void);

/* Give back (MADV_DONTNEED) every page of its blocks that no live object
 * touches; they are taken again before new memory. Returns the bytes
 * given back. */
size_t pf_lalloc_trim(struct pf_lalloc *a);

/* Statistics, for tests and benchmarks: bytes of live small objects, and
 * bytes of the blocks' pages currently held (not given back). */
void pf_lalloc_stats(const struct pf_lalloc *a, size_t *ret_live, size_t *ret_held);
