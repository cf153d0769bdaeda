// Package sdktest runs a plugin's handler natively, without wasm, through the same record
// encoding, SDK code and result packing the wasm build uses; plugin authors unit-test their
// handler with it (like net/http/httptest). It never starts a wasm runtime: test the built
// module with package plugins for that.
package sdktest

import (
	"sync"

	"github.com/weirproject/weir/sdk"
	"github.com/weirproject/weir/sdk/abi"
	"github.com/weirproject/weir/sdk/internal/hostcall"
)

// Result is a handler's decision as the host sees it.
type Result struct {
	Verdict  abi.Verdict
	Strategy string // name of the proposed strategy
	Reason   string // reason of a deny
	Logs     []string
}

var mu sync.Mutex // the fake host and the registered handler are globals

// Run registers h (as sdk.Handle does) and decides in with config as the plugin's config
// (the JSON text of the manifest's "config"; nil for none). The error reports a result the
// host would reject as a fault. Run is safe for concurrent use; calls are serialised.
func Run(h sdk.Handler, in *abi.Input, config []byte) (Result, error) {
	mu.Lock()
	defer mu.Unlock()
	sdk.Handle(h)
	hostcall.Fake.Input = in.AppendRecord(nil)
	hostcall.Fake.Config = config
	hostcall.Fake.Reason = ""
	hostcall.Fake.Logs = nil
	hostcall.ResetConfig()
	r := abi.Result(hostcall.Decide())
	res := Result{Verdict: r.Verdict(), Strategy: r.Strategy().String(), Logs: hostcall.Fake.Logs}
	if r.Verdict() == abi.Deny {
		res.Reason = hostcall.Fake.Reason
	}
	return res, r.Check()
}
