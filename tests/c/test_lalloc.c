/* The executable's Lua allocator (src/lalloc.c), driven as Lua drives it:
 * a long random run of allocations (of every kind), growths, shrinks
 * and frees, every live object filled with its own pattern and checked
 * before it changes (an overlap or a stale free-list link shows as a
 * wrong byte); large blocks are malloc's, resized and freed through it
 * (a shrink into a small one copies); a trim gives back the pages nothing
 * lives on, keeps every live object intact, and the pages given back are
 * taken again first. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lalloc.h"
#include "check.h"

#define SLOTS 4000

struct obj {
	unsigned char *p;
	size_t size;
	unsigned char fill;
};

static struct obj objs[SLOTS];
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Sizes as a Lua state asks them: mostly small, some up to a few KiB. */
static size_t some_size(void)
{
	uint64_t r = next() % 100;
	if (r < 80)
		return 1 + next() % 128;
	if (r < 95)
		return 1 + next() % PF_LALLOC_SMALL;
	return 1 + next() % 4096;
}

static int intact(const struct obj *o)
{
	for (size_t i = 0; i < o->size; i++)
		if (o->p[i] != (unsigned char)(o->fill + i))
			return 0;
	return 1;
}

static void fill(struct obj *o)
{
	o->fill = (unsigned char)next();
	for (size_t i = 0; i < o->size; i++)
		o->p[i] = (unsigned char)(o->fill + i);
}

static size_t check_all(void)
{
	size_t bad = 0;
	for (size_t i = 0; i < SLOTS; i++)
		if (objs[i].p && !intact(&objs[i]))
			bad++;
	return bad;
}

static void run(struct pf_lalloc *a, size_t steps, unsigned keep_percent, size_t *ret_bad)
{
	for (size_t n = 0; n < steps; n++) {
		struct obj *o = &objs[next() % SLOTS];
		if (o->p && !intact(o))
			(*ret_bad)++;
		if (!o->p) {
			if (next() % 100 >= keep_percent + 20)
				continue;
			o->size = some_size();
			/* The kind of object, as Lua passes it: arrays (0),
			 * strings (4) and tables (5) lie apart. */
			static const size_t kinds[] = { 0, 4, 5 };
			o->p = pf_lalloc(a, NULL, kinds[next() % 3], o->size);
			if (o->p)
				fill(o);
		} else if (next() % 100 < keep_percent) {
			/* Resize, keeping the common prefix. */
			size_t size = some_size();
			unsigned char *p = pf_lalloc(a, o->p, o->size, size);
			if (!p)
				continue;
			size_t common = size < o->size ? size : o->size;
			for (size_t i = 0; i < common; i++)
				if (p[i] != (unsigned char)(o->fill + i)) {
					(*ret_bad)++;
					break;
				}
			o->p = p;
			o->size = size;
			fill(o);
		} else {
			pf_lalloc(a, o->p, o->size, 0);
			o->p = NULL;
		}
	}
}

int main(void)
{
	struct pf_lalloc *a = pf_lalloc_new();
	CHECK(a != NULL, "pf_lalloc_new");
	if (!a)
		return 1;

	/* Large blocks are malloc's: some made by malloc directly, as if
	 * by the allocator, resized and freed through it. */
	for (size_t i = 0; i < 50; i++) {
		struct obj *o = &objs[i];
		o->size = PF_LALLOC_SMALL + 1 + i * 40;
		o->p = malloc(o->size);
		fill(o);
	}
	size_t bad = 0;
	run(a, 400000, 60, &bad);
	CHECK(bad == 0 && check_all() == 0, "400000 steps: every live object intact (%zu wrong)", bad);

	/* Free most, then trim: pages go back, the rest stays intact. */
	for (size_t i = 0; i < SLOTS; i++)
		if (objs[i].p && next() % 100 < 90) {
			pf_lalloc(a, objs[i].p, objs[i].size, 0);
			objs[i].p = NULL;
		}
	size_t live, held_before, held_after;
	pf_lalloc_stats(a, &live, &held_before);
	size_t given = pf_lalloc_trim(a);
	pf_lalloc_stats(a, &live, &held_after);
	CHECK(given > 0 && held_after == held_before - given, "trim gave back %zu bytes (held %zu -> %zu)", given,
	      held_before, held_after);
	CHECK(held_after >= live, "what is held (%zu) covers the live objects (%zu)", held_after, live);
	CHECK(check_all() == 0, "after trim: every live object intact");
	CHECK(pf_lalloc_trim(a) == 0, "a second trim finds nothing more");

	/* The pages given back are taken again before new memory: once the
	 * free slots of a size run out, the next one comes from a unit given
	 * back (4 KiB more held), not from a new block (64 KiB). */
	size_t held_again = held_after;
	for (size_t i = 0; i < SLOTS && held_again == held_after; i++)
		if (!objs[i].p) {
			objs[i].size = 64;
			objs[i].p = pf_lalloc(a, NULL, 0, 64);
			fill(&objs[i]);
			pf_lalloc_stats(a, &live, &held_again);
		}
	CHECK(held_again == held_after + 4096, "new objects land in a page given back (held %zu -> %zu)", held_after,
	      held_again);

	bad = 0;
	run(a, 200000, 50, &bad);
	CHECK(bad == 0 && check_all() == 0, "200000 more steps after the trim: every object intact (%zu wrong)", bad);

	/* Many blocks (a recipe with many containers): 4 MiB of objects of
	 * 1 KiB, each found again among them when freed. */
	enum { MANY = 4096 };
	static unsigned char *many[MANY];
	size_t wrong = 0;
	for (size_t i = 0; i < MANY; i++) {
		many[i] = pf_lalloc(a, NULL, 0, 1000);
		if (many[i])
			memset(many[i], (int)(i & 0xff), 1000);
	}
	for (size_t k = 0; k < MANY; k++) {
		size_t i = (k * 2654435761u) % MANY;
		if (!many[i] || many[i][0] != (unsigned char)(i & 0xff) || many[i][999] != (unsigned char)(i & 0xff))
			wrong++;
		pf_lalloc(a, many[i], 1000, 0);
		many[i] = NULL;
	}
	CHECK(wrong == 0 && check_all() == 0, "4 MiB in many blocks, freed in a shuffled order: intact (%zu wrong)",
	      wrong);

	for (size_t i = 0; i < SLOTS; i++)
		if (objs[i].p) {
			pf_lalloc(a, objs[i].p, objs[i].size, 0);
			objs[i].p = NULL;
		}
	pf_lalloc_stats(a, &live, &held_after);
	CHECK(live == 0, "everything freed: no live bytes (%zu)", live);
	pf_lalloc_trim(a);
	pf_lalloc_stats(a, &live, &held_after);
	CHECK(held_after == 0, "everything freed and trimmed: nothing held (%zu)", held_after);

	printf("%s\n", failures ? "FAILED" : "passed");
	return failures ? 1 : 0;
}
