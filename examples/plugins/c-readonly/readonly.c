/* c-readonly: the read-only example plugin in C (the same as wat-readonly). It denies object
 * writes (any method but GET and HEAD, on a request that names a key) in buckets whose name
 * starts with "archive-", and passes the rest.
 *
 * Build: clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -o readonly.wasm readonly.c
 * (with weir.h beside it: weir plugin c-header > weir.h) */
#include "weir.h"

WEIR_EXPORT_ABI_VERSION

/* The record goes here when it fits; a bigger one goes to memory grown at the end. */
static weir_u8 small[4096];
static weir_u8 *big;
static weir_u32 big_cap;

static const weir_u8 *read_record(void) {
	weir_u32 n = weir_input_read(small, sizeof small);
	if (n <= sizeof small) {
		return small;
	}
	if (n > big_cap) {
		weir_u8 *end = (weir_u8 *)(__builtin_wasm_memory_size(0) * 65536);
		if (big + big_cap != end) { /* start a new region at the end of memory */
			big = end;
			big_cap = 0;
		}
		weir_u32 pages = (n - big_cap + 65535) / 65536;
		if (__builtin_wasm_memory_grow(0, pages) == (__SIZE_TYPE__)-1) {
			__builtin_trap(); /* over the manifest's memory_pages: a memory fault */
		}
		big_cap += pages * 65536;
	}
	weir_input_read(big, big_cap);
	return big;
}

static const char reason[] = "objects in archive-* buckets are read-only";

WEIR_EXPORT("weir_decide") weir_u32 weir_decide(void) {
	const weir_u8 *rec = read_record();
	weir_str method = weir_string(rec, WEIR_METHOD);
	if (weir_string(rec, WEIR_KEY).len == 0 || weir_equal(method, "GET") || weir_equal(method, "HEAD")) {
		return WEIR_PASS;
	}
	if (!weir_has_prefix(weir_string(rec, WEIR_BUCKET), "archive-")) {
		return WEIR_PASS;
	}
	weir_reason_write(reason, sizeof reason - 1);
	return WEIR_DENY;
}
