// Command by-key is an example weir plugin: it proposes a concurrency strategy from the
// object key alone. Keys under locks/ get "lease" (one writer at a time, by lease), keys ending
// in .json get "etag" (writers must send If-Match / If-None-Match), everything else passes,
// leaving the bucket's strategy to the policy.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o by-key.wasm .
package main

import (
	"strings"

	"github.com/weirproject/weir/sdk"
)

func init() { sdk.Handle(decide) }

func main() {} // a reactor's main never runs; init registers the handler

func decide(r *sdk.Request) sdk.Decision {
	switch key := r.Key(); {
	case strings.HasPrefix(key, "locks/"):
		return sdk.Propose(sdk.Lease)
	case strings.HasSuffix(key, ".json"):
		return sdk.Propose(sdk.ETag)
	}
	return sdk.Pass()
}
