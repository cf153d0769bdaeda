/* weir.h: the weir plugin ABI v1 for C, one header, no libc.
 *
 * Build a plugin with clang and lld (Debian: apt-get install clang lld):
 *
 *   clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -o plugin.wasm plugin.c
 *
 * -nostdlib: there is no libc in a plugin (no WASI either unless you bring one), so use only
 * what this header gives and your own code. -Wl,--no-entry: a plugin is a library, the host
 * calls its exports. wasm-ld exports the linear memory as "memory", as the ABI requires.
 *
 * A plugin exports weir_abi_version (WEIR_EXPORT_ABI_VERSION below writes it) and
 * weir_decide, which returns one of the WEIR_* results. The normative reference is the Go
 * package github.com/weirproject/weir/sdk/abi; this header follows ABI 1.0.
 */
#ifndef WEIR_H
#define WEIR_H

typedef __UINT8_TYPE__ weir_u8;
typedef __UINT32_TYPE__ weir_u32;
typedef __UINT64_TYPE__ weir_u64;
typedef __INT64_TYPE__ weir_i64;

#define WEIR_ABI_MAJOR 1
#define WEIR_ABI_MINOR 1
#define WEIR_ABI_VERSION ((weir_u32)(WEIR_ABI_MAJOR << 16 | WEIR_ABI_MINOR))

/* Exports: put WEIR_EXPORT_ABI_VERSION once in a .c file, and define
 *   WEIR_EXPORT("weir_decide") weir_u32 weir_decide(void) { ... } */
#define WEIR_EXPORT(name) __attribute__((export_name(name)))
#define WEIR_EXPORT_ABI_VERSION \
	WEIR_EXPORT("weir_abi_version") weir_u32 weir_abi_version(void) { return WEIR_ABI_VERSION; }

/* Host functions, module "weir_v1". Buffers belong to the guest. A range outside the guest's
 * memory traps the call. */
#define WEIR_IMPORT(name) __attribute__((import_module("weir_v1"), import_name(name)))

/* Writes the request record at ptr if it fits (its length <= limit); always returns its
 * length: call again with a bigger buffer when the result is over limit. */
WEIR_IMPORT("input_read") weir_u32 weir_input_read(void *ptr, weir_u32 limit);
/* The same for the manifest's "config", as JSON text (0 bytes when there is none). */
WEIR_IMPORT("config_read") weir_u32 weir_config_read(void *ptr, weir_u32 limit);
/* Sets the reason of a deny: at most WEIR_MAX_REASON bytes, or the call faults. */
WEIR_IMPORT("reason_write") void weir_reason_write(const void *ptr, weir_u32 len);
/* Logs a line through the gateway's log, with the plugin's name: cut at WEIR_MAX_LOG bytes,
 * at most WEIR_MAX_LOG_LINES lines a call. */
WEIR_IMPORT("log") void weir_log(weir_u32 level, const void *ptr, weir_u32 len);

#define WEIR_MAX_REASON 1024
#define WEIR_MAX_LOG 1024
#define WEIR_MAX_LOG_LINES 16
#define WEIR_LOG_DEBUG 0
#define WEIR_LOG_INFO 1
#define WEIR_LOG_WARN 2
#define WEIR_LOG_ERROR 3

/* Results of weir_decide: bits 0-7 the verdict, bits 8-15 the strategy of a proposal. */
#define WEIR_PASS ((weir_u32)0)
#define WEIR_DENY ((weir_u32)2)
#define WEIR_PROPOSE_LAST_WRITER_WINS ((weir_u32)(1 << 8 | 1))
#define WEIR_PROPOSE_ETAG ((weir_u32)(2 << 8 | 1))
#define WEIR_PROPOSE_LEASE ((weir_u32)(3 << 8 | 1))

/* The request record, little-endian. Every offset below, and the offset in each string or
 * list slot, counts from the record's first byte (the ptr given to weir_input_read), not
 * from the start of memory: a string's bytes are at rec + offset. */
#define WEIR_HEADER_SIZE 168 /* ABI 1.1 (160 in 1.0); the u32 at 0 is the record's header size */
#define WEIR_OFF_FLAGS 4
#define WEIR_OFF_OBJECT_SIZE 8
#define WEIR_OFF_GENERATION 16
#define WEIR_OFF_REQUEST_SIZE 24 /* -1: unknown */
#define WEIR_OFF_TIME 32         /* Unix nanoseconds; 0: unknown */

#define WEIR_FLAG_ROOT 1u
#define WEIR_FLAG_BUCKET 2u
#define WEIR_FLAG_OBJECT_EXISTS 4u

/* String slots: slot i is a u32 offset and a u32 length at 40 + 8*i. */
enum weir_field {
	WEIR_ACTION,
	WEIR_ACCESS_KEY,
	WEIR_PRINCIPAL,
	WEIR_BUCKET,
	WEIR_BUCKET_OWNER,
	WEIR_BUCKET_STRATEGY,
	WEIR_KEY,
	WEIR_OBJECT_ETAG,
	WEIR_OBJECT_CONTENT_TYPE,
	WEIR_LEASE_STATE,
	WEIR_METHOD,
	WEIR_REMOTE_ADDR,
};

/* List slots: slot j is a u32 offset of the first entry and a u32 count at 136 + 8*j. An
 * entry string is a u32 length then its bytes; a pair is two strings, name first. */
enum weir_list {
	WEIR_GROUPS,      /* strings */
	WEIR_TAGS,        /* pairs: the bucket's tags */
	WEIR_HEADERS,     /* pairs, lower-case names */
	WEIR_OBJECT_TAGS, /* pairs: the object's tags (ABI 1.1: slot at 160) */
};

static inline weir_u32 weir_u32_at(const weir_u8 *rec, weir_u32 off) {
	const weir_u8 *p = rec + off;
	return (weir_u32)p[0] | (weir_u32)p[1] << 8 | (weir_u32)p[2] << 16 | (weir_u32)p[3] << 24;
}

static inline weir_u64 weir_u64_at(const weir_u8 *rec, weir_u32 off) {
	return (weir_u64)weir_u32_at(rec, off) | (weir_u64)weir_u32_at(rec, off + 4) << 32;
}

/* A string of the record: not NUL-terminated. */
typedef struct {
	const char *ptr;
	weir_u32 len;
} weir_str;

static inline weir_str weir_string(const weir_u8 *rec, enum weir_field f) {
	weir_str s = {(const char *)rec + weir_u32_at(rec, 40 + 8 * f), weir_u32_at(rec, 44 + 8 * f)};
	return s;
}

/* weir_has_prefix reports whether s starts with the NUL-terminated prefix. */
static inline int weir_has_prefix(weir_str s, const char *prefix) {
	weir_u32 i = 0;
	for (; prefix[i]; i++) {
		if (i >= s.len || s.ptr[i] != prefix[i]) {
			return 0;
		}
	}
	return 1;
}

/* weir_equal reports whether s is the NUL-terminated text. */
static inline int weir_equal(weir_str s, const char *text) {
	return weir_has_prefix(s, text) && text[s.len] == 0;
}

/* weir_pair finds a bucket tag (or, with WEIR_OBJECT_TAGS, an object tag; with WEIR_HEADERS
 * and a lower-case name, a header) and sets *value; it returns 0 when there is none, also
 * when the record's header (its size at offset 0) has no slot for the list. */
static inline int weir_pair(const weir_u8 *rec, enum weir_list l, const char *name, weir_str *value) {
	if (136 + 8 * (weir_u32)l + 8 > weir_u32_at(rec, 0)) {
		return 0;
	}
	weir_u32 off = weir_u32_at(rec, 136 + 8 * l), n = weir_u32_at(rec, 140 + 8 * l);
	for (weir_u32 i = 0; i < n; i++) {
		weir_str k = {(const char *)rec + off + 4, weir_u32_at(rec, off)};
		off += 4 + k.len;
		weir_str v = {(const char *)rec + off + 4, weir_u32_at(rec, off)};
		off += 4 + v.len;
		if (weir_equal(k, name)) {
			*value = v;
			return 1;
		}
	}
	return 0;
}

#endif
