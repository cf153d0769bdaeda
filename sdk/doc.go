// Package sdk is the Go guest SDK for weir plugins: it owns the wasm exports
// (weir_abi_version, weir_decide), the calls to the weir_v1 host functions and the decoding
// of the request record, so that a plugin author writes one function. It imports only the
// standard library and [abi]; it never parses JSON, never touches files or the network, and
// never decides anything itself.
//
// A plugin is a main package built with standard Go (1.24 or later, not TinyGo) as a WASI
// reactor:
//
//	package main
//
//	import "github.com/weirproject/weir/sdk"
//
//	func init() { sdk.Handle(decide) }
//
//	func main() {} // required by Go, never run in a reactor
//
//	func decide(r *sdk.Request) sdk.Decision {
//		switch {
//		case strings.HasPrefix(r.Key(), "locks/"):
//			return sdk.Propose(sdk.Lease)
//		case r.Size() > 1<<30:
//			return sdk.Deny("objects over 1 GiB are not accepted here")
//		}
//		return sdk.Pass()
//	}
//
// Build it with:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o my-plugin.wasm .
//
// Register the handler in init: a reactor's main function never runs. The handler runs once
// per request, on the instance's only goroutine; instances are never shared between
// concurrent requests. Request accessors read the host's record in place; only [Request.Input]
// and [Config] allocate. The plugin's configuration is the JSON text of the manifest's "config"
// value ([Config]); parse it once (for example with encoding/json in init).
//
// A panic in the handler traps the instance: the host fails the request (or passes it, for a
// plugin with fail_open), logs the fault with what the guest printed to stderr, and discards
// the instance.
//
// Test a handler natively with package [github.com/weirproject/weir/sdk/sdktest]; the
// imports are replaced by an in-process fake when GOOS is not wasip1.
//
// The wire contract itself (names, numbers, byte layout), for authors in other languages, is
// documented in package [abi].
package sdk
