// Package abi is weir's plugin ABI, version 1: the contract between the host (package
// plugins) and a WebAssembly guest, in any language. It owns the names, numbers and byte
// layouts of that contract and the Go types both sides share. It never runs wasm, never
// imports anything outside the standard library, and never changes incompatibly within
// major version 1.
//
// # Shape of a guest
//
// A guest is a wasm module built as a reactor (for Go:
// GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared). For every instance the host:
//
//  1. instantiates it with the imports below (plus a sandboxed wasi_snapshot_preview1: no
//     files, no network, a fake clock and a deterministic random source unless the
//     manifest grants "clock" or "random");
//  2. runs _initialize once if it is exported (never _start);
//  3. calls weir_abi_version once and refuses the module unless the major is 1 and the minor
//     is at most [Minor];
//  4. then, for each request, calls weir_decide, from one goroutine at a time: an instance is
//     never shared by two concurrent requests, so a guest needs no locking. State kept in
//     globals survives between calls of the same instance but a host may discard an instance
//     at any time; do not rely on it.
//
// Exports (the module must export all but _initialize):
//
//	memory                               linear memory the host functions read and write
//	_initialize()                        optional reactor initialiser, run once
//	weir_abi_version() -> i32            Major<<16 | Minor, e.g. 0x00010000
//	weir_decide() -> i32                 a Result: verdict | strategy<<8
//
// Imports, module "weir_v1" (all i32; see the Func* constants for each contract):
//
//	input_read(ptr, limit) -> len        the request record, written if len <= limit
//	config_read(ptr, limit) -> len       the manifest's "config" JSON text, same contract
//	reason_write(ptr, len)               the reason of a deny (at most 1024 bytes)
//	log(level, ptr, len)                 a log line: 0 debug, 1 info, 2 warn, 3 error (16 a call)
//
// Buffers always belong to the guest: the host writes only into a buffer the guest passed,
// and only if the whole value fits, and it always returns the value's real length. A guest
// that got len > limit calls again with len bytes. No allocator export is needed, so
// garbage-collected guests are safe. A range outside the guest's memory traps.
//
// # Result of weir_decide
//
// Bits 0–7 hold the verdict, bits 8–15 the strategy, bits 16–31 are zero:
//
//	verdict   0 pass      no opinion
//	          1 propose   propose the strategy in bits 8–15
//	          2 deny      refuse; the reason is the last reason_write of this call
//	strategy  0 none      (pass and deny)
//	          1 last-writer-wins
//	          2 etag
//	          3 lease
//
// So 0x0000 passes, 0x0201 proposes etag, 0x0301 proposes lease, 0x0002 denies. Anything
// else (an unknown verdict, a propose without a strategy, a strategy with pass or deny, high
// bits) is a fault of the plugin, like a trap.
//
// # The request record
//
// input_read writes one record, little-endian, laid out so a guest reads any field with two
// loads and no parsing. Offsets inside the record are from its first byte.
//
//	off  size  field
//	  0   u32  header size: 168 in ABI 1.1, 160 in ABI 1.0 (later minors may grow the header;
//	           skip what you do not know, and treat fields past the header size as absent)
//	  4   u32  flags: bit 0 principal.root, bit 1 the request names a bucket,
//	           bit 2 object.exists; other bits are zero
//	  8   i64  object.size (bytes; 0 when there is no object)
//	 16   u64  object.generation
//	 24   i64  request.size (body bytes; -1: unknown)
//	 32   i64  request.time (Unix nanoseconds, gateway clock; 0: unknown)
//	 40  12×8  string slots, each u32 offset then u32 length (UTF-8 bytes, no terminator):
//	            40 action            "s3:PutObject", "s3:GetObject", …
//	            48 principal.access_key
//	            56 principal.name
//	            64 bucket.name       empty: the request names no bucket
//	            72 bucket.owner
//	            80 bucket.strategy   the bucket's configured strategy name
//	            88 object.key        empty: the request names no object
//	            96 object.etag       quoted, as S3 sends it
//	           104 object.content_type
//	           112 object.lease_state "", "available", "leased", "expired", "breaking", "broken"
//	           120 request.method    "PUT", "GET", …
//	           128 request.remote_addr
//	136   4×8  list slots, each u32 offset of the first entry then u32 count:
//	           136 principal.groups   count strings
//	           144 bucket.tags        count pairs (key, value)
//	           152 request.headers    count pairs (lower-case name, value)
//	           160 object.tags        count pairs (key, value); ABI 1.1
//	168        data: the bytes of the string slots, then the list entries. A list entry
//	           string is u32 length then the bytes; a pair is two of them, name first.
//	           Pair order is unspecified; names are unique.
//
// For example, to read the bucket name a WAT guest loads the u32 at 64 (offset) and the u32
// at 68 (length) of the buffer it passed to input_read; a Go guest calls
// Record(buf).Bytes(FieldBucket), and the sdk package hides even that.
//
// # Versioning
//
// The major version is both in the import module name (weir_v1) and in weir_abi_version. A
// minor version only adds: host functions (a guest that imports one needs a host with that
// minor), fields at the end of the record header, strategy codes. Hosts accept a guest whose
// minor is at most theirs.
//
//	1.0  the first release
//	1.1  object.tags (list slot 3 at 160); the header grows to 168 bytes. A 1.0 guest reads
//	     1.1 records unchanged: its offsets are where they were, and it skips the header by
//	     its size word.
//
// A guest may read object.tags only when it declares minor 1 or later (the host then has
// it); a reader handed a record whose header size is 160 sees no object tags.
//
// # Faults
//
// A trap (including a Go panic, which exits the instance), a call over its deadline, a memory
// growth over the plugin's cap, or invalid output (an invalid result, a reason over
// [MaxReasonLen] bytes) fails the request closed (unless the operator set fail_open for the
// plugin) and the host throws the instance away. The host keeps serving.
package abi
