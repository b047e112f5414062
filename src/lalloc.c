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
/* Blocks are cut into UNITs, each counting the live objects that touch
 * it; a page whose units count none can go back to the kernel. */
#define BLOCK (64 * 1024)
#define UNIT 4096
#define UNITS (BLOCK / UNIT)

_Static_assert(UNITS <= 16, "the returned mask is 16 bits");

struct block {
	char *base;
	uint16_t count[UNITS];
	uint16_t returned; /* units given back, not taken again yet */
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
	struct block *bump_block;
};

struct pf_lalloc {
	struct arena arena[ARENAS];
	struct block *blocks;
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

/* The block holding p, or NULL: a binary search over the blocks, sorted
 * by address (a recipe with a thousand containers has hundreds). */
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

/* Count an object of size bytes at p in (delta +1) or out (-1) of the
 * units it touches. */
static void touch(struct block *b, const char *p, size_t size, int delta)
{
	size_t u0 = (size_t)(p - b->base) / UNIT, u1 = (size_t)(p + size - 1 - b->base) / UNIT;
	for (size_t u = u0; u <= u1; u++)
		b->count[u] = (uint16_t)(b->count[u] + delta);
}

/* A new region to cut objects from: a unit given back before, else a new
 * block. What was left of the old region (less than one object) stays
 * unused. */
static int refill(struct pf_lalloc *a, int kind)
{
	struct arena *ar = &a->arena[kind];
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
		ar->bump_block = b;
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
	/* In address order. */
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
	/* The other arena's region pointed into the array, which moved. */
	for (int k = 0; k < ARENAS; k++)
		a->arena[k].bump_block = NULL;
	ar->bump = base;
	ar->bump_end = ar->bump + BLOCK;
	ar->bump_block = b;
	return 0;
}

static size_t class_of(size_t size)
{
	return (size + GRAN - 1) / GRAN;
}

static void *alloc_small(struct pf_lalloc *a, int kind, size_t size)
{
	struct arena *ar = &a->arena[kind];
	size_t cls = class_of(size), rs = cls * GRAN;
	char *p = ar->free[cls];
	struct block *b;
	if (p) {
		ar->free[cls] = *(void **)p;
		b = find_block(a, p);
	} else {
		if ((size_t)(ar->bump_end - ar->bump) < rs && refill(a, kind) < 0)
			return NULL;
		if (!ar->bump_block)
			ar->bump_block = find_block(a, ar->bump);
		p = ar->bump;
		ar->bump += rs;
		b = ar->bump_block;
	}
	touch(b, p, rs, +1);
	a->live += rs;
	return p;
}

static void free_small(struct pf_lalloc *a, struct block *b, void *p, size_t size)
{
	size_t cls = class_of(size);
	touch(b, p, cls * GRAN, -1);
	a->live -= cls * GRAN;
	size_t u = (size_t)((char *)p - b->base) / UNIT;
	struct arena *ar = &a->arena[b->kind[u]];
	*(void **)p = ar->free[cls];
	ar->free[cls] = p;
}

void *pf_lalloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct pf_lalloc *a = ud;
	struct block *b = ptr ? find_block(a, ptr) : NULL;
	if (nsize == 0) {
		if (b)
			free_small(a, b, ptr, osize);
		else
			free(ptr);
		return NULL;
	}
	if (!ptr) {
		/* osize is the kind of object Lua makes. */
		return nsize <= PF_LALLOC_SMALL ? alloc_small(a, kind_of(osize), nsize) : malloc(nsize);
	}
	if (!b) {
		/* Large, or made before the allocator was installed. */
		if (nsize > PF_LALLOC_SMALL)
			return realloc(ptr, nsize);
		void *n = alloc_small(a, ARRAYS, nsize);
		/* Lua counts on a shrink never failing: malloc's block,
		 * resized, stays malloc's. */
		if (!n)
			return realloc(ptr, nsize);
		memcpy(n, ptr, osize < nsize ? osize : nsize);
		free(ptr);
		return n;
	}
	/* Ours: Lua frees it later with the size it asks for now, which must
	 * name the same class. */
	if (nsize <= PF_LALLOC_SMALL && class_of(nsize) == class_of(osize))
		return ptr;
	void *n = nsize <= PF_LALLOC_SMALL ? alloc_small(a, ARRAYS, nsize) : malloc(nsize);
	if (!n && nsize < osize) {
		/* A shrink must not fail: the block stays, freed later as of
		 * the smaller class (a few bytes lost, it still fits). */
		struct block *kept = find_block(a, ptr);
		touch(kept, ptr, class_of(osize) * GRAN, -1);
		touch(kept, ptr, class_of(nsize) * GRAN, +1);
		a->live -= (class_of(osize) - class_of(nsize)) * GRAN;
		return ptr;
	}
	if (!n)
		return NULL;
	memcpy(n, ptr, osize < nsize ? osize : nsize);
	free_small(a, find_block(a, ptr), ptr, osize);
	return n;
}

/* Do [p, p + size) touch a unit of b in mask? */
static bool touches(const struct block *b, const char *p, size_t size, uint16_t mask)
{
	size_t u0 = (size_t)(p - b->base) / UNIT, u1 = (size_t)(p + size - 1 - b->base) / UNIT;
	for (size_t u = u0; u <= u1; u++)
		if (mask & (1u << u))
			return true;
	return false;
}

size_t pf_lalloc_trim(struct pf_lalloc *a)
{
	size_t per_page = a->page / UNIT;
	if (per_page == 0 || a->page > BLOCK)
		return 0;
	/* The regions being cut go through the same test as the rest. */
	for (int k = 0; k < ARENAS; k++) {
		a->arena[k].bump = a->arena[k].bump_end = NULL;
		a->arena[k].bump_block = NULL;
	}

	/* The pages to give back: every unit counts no live object. */
	uint16_t *give = calloc(a->n_blocks ? a->n_blocks : 1, sizeof(*give));
	if (!give)
		return 0;
	bool any = false;
	for (size_t i = 0; i < a->n_blocks; i++) {
		struct block *b = &a->blocks[i];
		for (size_t u = 0; u < UNITS; u += per_page) {
			uint16_t page_mask = (uint16_t)(((1u << per_page) - 1) << u);
			bool empty = true;
			for (size_t k = u; k < u + per_page; k++)
				empty = empty && b->count[k] == 0;
			if (empty && (b->returned & page_mask) != page_mask) {
				give[i] |= page_mask;
				any = true;
			}
		}
	}
	if (!any) {
		free(give);
		return 0;
	}
	/* First out of the free lists: their links are in those pages. */
	for (int k = 0; k < ARENAS; k++) {
		for (size_t cls = 1; cls <= NCLASS; cls++) {
			void **link = &a->arena[k].free[cls];
			while (*link) {
				char *p = *link;
				struct block *b = find_block(a, p);
				if (touches(b, p, cls * GRAN, give[b - a->blocks]))
					*link = *(void **)p;
				else
					link = (void **)p;
			}
		}
	}
	size_t given = 0;
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
