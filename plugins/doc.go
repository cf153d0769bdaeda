// Package plugins is weir's WebAssembly plugin host. It owns loading a plugins directory
// (DIR/plugins.json and the modules it names), validating each module against the ABI in
// [github.com/weirproject/weir/sdk/abi], compiling it once (with an optional on-disk cache),
// pooling its instances, calling them under a memory cap and a CPU budget, and hot-reloading
// the directory. It runs before the policy and only advises: a plugin passes, proposes a
// concurrency strategy, or denies with a reason; the policy still has the final word. It never
// imports the engine, the policy engine or the HTTP stack, never gives a guest files, network,
// a real clock or real randomness unless granted, and never lets one request's fault reach
// another.
//
// # Manifest
//
// DIR/plugins.json:
//
//	{"plugins": [
//	  {"name": "by-key", "wasm": "by-key.wasm", "order": 10,
//	   "buckets": ["*"], "prefixes": ["locks/"],
//	   "config": {"any": "JSON"},
//	   "timeout": "10ms", "memory_pages": 64, "pool_size": 8,
//	   "fail_open": false, "grants": [], "reads": ["object", "headers"]}
//	]}
//
//	name          unique; reported in Decision.Plugin, logs and Stats
//	wasm          module file, relative to DIR
//	order         plugins run in ascending order (ties: manifest order)
//	buckets       bucket names, or "*"; absent or empty: every request
//	prefixes      key prefixes; absent or empty: every key; set: only requests naming a key
//	              with one of them
//	config        any JSON value; the guest reads its text with config_read
//	timeout       CPU budget per call (default 10ms, at most 10s; wall-clock time off Linux):
//	              a call is stopped while it runs once it has spent it
//	memory_pages  cap on each instance's linear memory, 64 KiB pages (default 256 = 16 MiB);
//	              Go guests need at least 64 (the Go runtime's heap starts at about 3.5 MiB)
//	pool_size     most instances at once (default GOMAXPROCS); more callers wait for one
//	fail_open     a fault counts as pass instead of failing the request (still logged)
//	grants        "clock" (the host's real clock), "random" (crypto/rand); default neither
//	reads         "object" (the object's metadata, a store read), "headers" (a copy of the
//	              request's headers); absent: both; a part not named is left empty
//
// Unknown fields are an error, so typos do not go unnoticed.
//
// # Decisions
//
// [Set.Decide] skips plugins whose buckets or prefixes do not match the request and runs
// the rest in order. The first deny ends the run. Otherwise the last proposal stands: a later
// plugin refines an earlier one's proposal, so put general plugins first and specific ones
// last. With no proposal and no deny, the verdict is pass.
//
// # Faults
//
// A trap (a Go panic included), a call that spends its CPU budget (it is stopped while it
// runs), an attempt to grow memory past memory_pages, or invalid output (an unknown verdict or
// strategy code, a reason over 1 KiB) fails that request with a [*FaultError] wrapping
// [ErrFault], is logged on one line (the error's first line, the wasm stack, the guest's
// stderr), and discards the instance; the next request gets a fresh one. With fail_open the
// plugin is treated as passing.
//
// # Concurrency and cost
//
// Each call takes an instance from its plugin's pool and returns it afterwards, so no two
// requests ever share an instance and there is no lock across plugins or calls: throughput
// scales with cores up to pool_size per plugin. A pooled call of a Go plugin costs a few
// microseconds (see README.md for measurements); compiling a Go module takes about half a
// second, once per content, shared through the compilation cache across reloads.
package plugins
