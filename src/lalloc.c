#define _GNU_SOURCE
#include "lalloc.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Sizes go up in GRAN steps: a free slot holds the next pointer. */
#define GRAN 8
#define NCLASS (PF_LALLOC_SMALL / GRAN)
/* Blocks are cut into UNITs; a page whose units hold nothing but free
 * slots can go back to the kernel. Nothing is counted while Lua runs:
 * the trim adds up the free slots (an allocation costs what a pop from a
 * list costs). */
#define BLOCK (64 * 1024)
#define UNIT 4096
#define UNITS (BLOCK / UNIT)

_Static_assert(UNITS <= 16, "the returned mask is 16 bits");
_Static_assert(PF_LALLOC_SMALL < UNIT, "a slot spans two units at most");

struct block {
	char *base;
	uint16_t returned;   /* units given back, not taken again yet */
	uint8_t kind[UNITS]; /* the arena each unit's objects belong to */
};

/* Three arenas, by the kind of object Lua makes: strings, the other
 * collected objects (tables, closures, upvalues, userdata, threads), and
 * the rest (prototypes and every array: code, constants, table parts).
 * What lives on after a module was let go (names other code shares too,
 * since short strings are shared) then pins pages of its own kind, not
 * the pages of the module's code: the supervisor of a running container
 * keeps ~35 kB less than with one arena. */
enum { ARRAYS, STRINGS, OBJECTS, ARENAS };
/* lua.h's LUA_TSTRING and its object tags up to LUA_TUPVAL, as Lua
 * passes them for a new object. */
#define TAG_STRING 4
#define TAG_FIRST_OBJECT 5
#define TAG_LAST_OBJECT 9

static int kind_of(size_t tag)
{
	if (tag == TAG_STRING)
		return STRINGS;
	return tag >= TAG_FIRST_OBJECT && tag <= TAG_LAST_OBJECT ? OBJECTS : ARRAYS;
}

struct arena {
	void *free[NCLASS + 1]; /* by class (size / GRAN), singly linked */
	char *bump, *bump_end;  /* where new objects are cut from */
};

struct pf_lalloc {
	struct arena arena[ARENAS];
	struct block *blocks;   /* sorted by address */
	size_t n_blocks, cap_blocks;
	size_t last;            /* the block found last, tried first */
	size_t n_returned;      /* units given back, not taken again yet */
	size_t first_returned;  /* no block before this one has any */
	size_t page;            /* the system's page size, a multiple of UNIT */
	size_t live;            /* bytes of live small objects */
};

struct pf_lalloc *pf_lalloc_new(void)
{
	struct pf_lalloc *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	long page = sysconf(_SC_PAGESIZE);
	a->page = page > 0 ? (size_t)page : UNIT;
	return a;
}

/* The block holding p, or NULL (a block malloc made, which Lua shrank
 * into a small one): a binary search over the blocks, sorted by address
 * (a recipe with a thousand containers has hundreds). */
static struct block *find_block(struct pf_lalloc *a, const void *p)
{
	const char *c = p;
	if (a->last < a->n_blocks) {
		struct block *b = &a->blocks[a->last];
		if (c >= b->base && c < b->base + BLOCK)
			return b;
	}
	size_t lo = 0, hi = a->n_blocks;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct block *b = &a->blocks[mid];
		if (c < b->base) {
			hi = mid;
		} else if (c >= b->base + BLOCK) {
			lo = mid + 1;
		} else {
			a->last = mid;
			return b;
		}
	}
	return NULL;
}

static size_t class_of(size_t size)
{
	return (size + GRAN - 1) / GRAN;
}

/* [p, p + size) into an arena's free lists, as slots of the largest
 * class and one for the rest (size a multiple of GRAN). */
static void push_range(struct arena *ar, char *p, size_t size)
{
	while (size >= GRAN) {
		size_t n = size < PF_LALLOC_SMALL ? size : PF_LALLOC_SMALL;
		size_t cls = n / GRAN;
		*(void **)p = ar->free[cls];
		ar->free[cls] = p;
		p += n;
		size -= n;
	}
}

/* A new region to cut objects from: a unit given back before, else a new
 * block. What is left of the old one joins the free lists. */
static __attribute__((noinline)) int refill(struct pf_lalloc *a, int kind)
{
	struct arena *ar = &a->arena[kind];
	push_range(ar, ar->bump, (size_t)(ar->bump_end - ar->bump));
	ar->bump = ar->bump_end = NULL;
	for (size_t i = a->n_returned ? a->first_returned : a->n_blocks; i < a->n_blocks; i++) {
		struct block *b = &a->blocks[i];
		if (!b->returned)
			continue;
		unsigned u = (unsigned)__builtin_ctz(b->returned);
		b->returned &= (uint16_t)~(1u << u);
		b->kind[u] = (uint8_t)kind;
		a->n_returned--;
		a->first_returned = i;
		ar->bump = b->base + (size_t)u * UNIT;
		ar->bump_end = ar->bump + UNIT;
		return 0;
	}
	if (a->n_blocks == a->cap_blocks) {
		size_t cap = a->cap_blocks ? a->cap_blocks * 2 : 8;
		struct block *blocks = realloc(a->blocks, cap * sizeof(*blocks));
		if (!blocks)
			return -1;
		a->blocks = blocks;
		a->cap_blocks = cap;
	}
	void *base;
	/* Page-aligned, so that its pages can be given back one by one. */
	if (posix_memalign(&base, a->page < BLOCK ? a->page : BLOCK, BLOCK) != 0)
		return -1;
	size_t i = a->n_blocks;
	while (i > 0 && a->blocks[i - 1].base > (char *)base)
		i--;
	memmove(&a->blocks[i + 1], &a->blocks[i], (a->n_blocks - i) * sizeof(*a->blocks));
	a->n_blocks++;
	if (i <= a->first_returned && a->n_returned)
		a->first_returned++;
	struct block *b = &a->blocks[i];
	*b = (struct block){ .base = base };
	memset(b->kind, kind, sizeof(b->kind));
	ar->bump = base;
	ar->bump_end = ar->bump + BLOCK;
	return 0;
}

/* A new object of class cls when its free list is empty: cut from the
 * region (out of line, so that the usual call stays short). */
static __attribute__((noinline)) void *alloc_cut(struct pf_lalloc *a, int kind, size_t cls)
{
	struct arena *ar = &a->arena[kind];
	size_t rs = cls * GRAN;
	if ((size_t)(ar->bump_end - ar->bump) < rs && refill(a, kind) < 0)
		return NULL;
	char *p = ar->bump;
	ar->bump += rs;
	a->live += rs;
	return p;
}

static inline void *alloc_small(struct pf_lalloc *a, int kind, size_t size)
{
	struct arena *ar = &a->arena[kind];
	size_t cls = class_of(size);
	char *p = ar->free[cls];
	if (!p)
		return alloc_cut(a, kind, cls);
	ar->free[cls] = *(void **)p;
	a->live += cls * GRAN;
	return p;
}

static void free_small(struct pf_lalloc *a, void *p, size_t size)
{
	size_t cls = class_of(size);
	a->live -= cls * GRAN;
	struct block *b = find_block(a, p);
	struct arena *ar = &a->arena[b ? b->kind[(size_t)((char *)p - b->base) / UNIT] : ARRAYS];
	*(void **)p = ar->free[cls];
	ar->free[cls] = p;
}

/* A free or a resize (out of line: the usual call is a new object). */
static __attribute__((noinline)) void *resize(struct pf_lalloc *a, void *ptr, size_t osize, size_t nsize)
{
	/* Which allocator made it: the size tells (Lua passes the one it
	 * asked for, and the allocator is Lua's from lua_newstate on). */
	if (nsize == 0) {
		if (osize <= PF_LALLOC_SMALL)
			free_small(a, ptr, osize);
		else
			free(ptr);
		return NULL;
	}
	if (osize > PF_LALLOC_SMALL) {
		if (nsize > PF_LALLOC_SMALL)
			return realloc(ptr, nsize);
		void *n = alloc_small(a, ARRAYS, nsize);
		/* Lua counts on a shrink never failing: malloc's block,
		 * resized, joins the free lists when freed (it is big
		 * enough). */
		if (!n)
			return realloc(ptr, nsize);
		memcpy(n, ptr, nsize);
		free(ptr);
		return n;
	}
	/* Lua frees it later with the size it asks for now, which must name
	 * the same class. */
	if (nsize <= PF_LALLOC_SMALL && class_of(nsize) == class_of(osize))
		return ptr;
	void *n = nsize <= PF_LALLOC_SMALL ? alloc_small(a, ARRAYS, nsize) : malloc(nsize);
	if (!n && nsize < osize) {
		/* A shrink keeps its block, freed later as of the smaller
		 * class (the rest of it is lost, it still fits). */
		a->live -= (class_of(osize) - class_of(nsize)) * GRAN;
		return ptr;
	}
	if (!n)
		return NULL;
	memcpy(n, ptr, osize < nsize ? osize : nsize);
	free_small(a, ptr, osize);
	return n;
}

void *pf_lalloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct pf_lalloc *a = ud;
	if (ptr)
		return resize(a, ptr, osize, nsize);
	/* A new object, the usual call: osize is its kind. */
	if (nsize - 1 < PF_LALLOC_SMALL)
		return alloc_small(a, kind_of(osize), nsize);
	return nsize ? malloc(nsize) : NULL;
}

/* Add [p, p + size) (inside block i) to the free bytes of its units. */
static void count_free(uint16_t *free_bytes, size_t i, const struct block *b, const char *p, size_t size)
{
	while (size) {
		size_t u = (size_t)(p - b->base) / UNIT;
		size_t n = (size_t)(b->base + (u + 1) * UNIT - p);
		if (n > size)
			n = size;
		free_bytes[i * UNITS + u] = (uint16_t)(free_bytes[i * UNITS + u] + n);
		p += n;
		size -= n;
	}
}

size_t pf_lalloc_trim(struct pf_lalloc *a)
{
	size_t per_page = a->page / UNIT;
	if (per_page == 0 || a->page > BLOCK || a->n_blocks == 0)
		return 0;
	/* The regions being cut join the free lists, and are counted with
	 * them. */
	for (int k = 0; k < ARENAS; k++) {
		struct arena *ar = &a->arena[k];
		push_range(ar, ar->bump, (size_t)(ar->bump_end - ar->bump));
		ar->bump = ar->bump_end = NULL;
	}
	/* Free bytes per unit: a unit of UNIT free bytes holds no object. */
	uint16_t *free_bytes = calloc(a->n_blocks * UNITS, sizeof(*free_bytes));
	uint16_t *give = calloc(a->n_blocks, sizeof(*give));
	if (!free_bytes || !give) {
		free(free_bytes);
		free(give);
		return 0;
	}
	for (int k = 0; k < ARENAS; k++)
		for (size_t cls = 1; cls <= NCLASS; cls++)
			for (char *p = a->arena[k].free[cls]; p; p = *(char **)p) {
				struct block *b = find_block(a, p);
				if (b)
					count_free(free_bytes, (size_t)(b - a->blocks), b, p, cls * GRAN);
			}
	bool any = false;
	for (size_t i = 0; i < a->n_blocks; i++) {
		struct block *b = &a->blocks[i];
		for (size_t u = 0; u < UNITS; u += per_page) {
			uint16_t page_mask = (uint16_t)(((1u << per_page) - 1) << u);
			bool empty = true;
			for (size_t k = u; k < u + per_page; k++)
				empty = empty && ((b->returned & (1u << k)) || free_bytes[i * UNITS + k] == UNIT);
			if (empty && (b->returned & page_mask) != page_mask) {
				give[i] |= page_mask;
				any = true;
			}
		}
	}
	size_t given = 0;
	if (any) {
		/* First out of the free lists (their links are in those
		 * pages); what a slot has outside them goes back in. */
		for (int k = 0; k < ARENAS; k++) {
			struct arena *ar = &a->arena[k];
			struct { char *p; size_t size; } keep[64];
			size_t n_keep = 0;
			for (size_t cls = 1; cls <= NCLASS; cls++) {
				void **link = &ar->free[cls];
				while (*link) {
					char *p = *link;
					size_t size = cls * GRAN;
					struct block *b = find_block(a, p);
					size_t u0 = b ? (size_t)(p - b->base) / UNIT : 0;
					size_t u1 = b ? (size_t)(p + size - 1 - b->base) / UNIT : 0;
					uint16_t g = b ? give[b - a->blocks] : 0;
					if (!b || !((g >> u0) & 1 || (g >> u1) & 1)) {
						link = (void **)p;
						continue;
					}
					*link = *(void **)p;
					/* A slot spans two units at most: its part in
					 * the one that stays. */
					if (u0 != u1 && n_keep < 64) {
						char *edge = b->base + u1 * UNIT;
						if (!((g >> u0) & 1))
							keep[n_keep].p = p, keep[n_keep++].size = (size_t)(edge - p);
						else if (!((g >> u1) & 1))
							keep[n_keep].p = edge, keep[n_keep++].size = (size_t)(p + size - edge);
					}
					if (n_keep == 64) {
						for (size_t j = 0; j < n_keep; j++)
							push_range(ar, keep[j].p, keep[j].size);
						n_keep = 0;
						link = &ar->free[cls]; /* the pushes may have changed this list */
					}
				}
			}
			for (size_t j = 0; j < n_keep; j++)
				push_range(ar, keep[j].p, keep[j].size);
		}
		for (size_t i = 0; i < a->n_blocks; i++) {
			struct block *b = &a->blocks[i];
			for (size_t u = 0; u < UNITS; u += per_page) {
				uint16_t page_mask = (uint16_t)(((1u << per_page) - 1) << u);
				if (!(give[i] & page_mask))
					continue;
				madvise(b->base + u * UNIT, a->page, MADV_DONTNEED);
				size_t more = per_page - (size_t)__builtin_popcount(b->returned & page_mask);
				given += more * UNIT;
				if (more && (!a->n_returned || i < a->first_returned))
					a->first_returned = i;
				a->n_returned += more;
				b->returned |= page_mask;
			}
		}
	}
	free(free_bytes);
	free(give);
	return given;
}

void pf_lalloc_stats(const struct pf_lalloc *a, size_t *ret_live, size_t *ret_held)
{
	size_t held = 0;
	for (size_t i = 0; i < a->n_blocks; i++)
		held += (size_t)(UNITS - __builtin_popcount(a->blocks[i].returned)) * UNIT;
	*ret_live = a->live;
	*ret_held = held;
}
