package sdk

import (
	"github.com/weirproject/weir/sdk/abi"
	"github.com/weirproject/weir/sdk/internal/hostcall"
)

func init() { hostcall.Decide = decide }

//go:wasmexport weir_abi_version
func abiVersion() uint32 { return abi.Version }

//go:wasmexport weir_decide
func weirDecide() uint32 { return decide() }

// invalid is a result the host rejects as a fault of the plugin.
const invalid = 0xff

// buf holds the record of the call in progress. It is reused by the next call: a handler that
// allocates nothing leaves the guest's garbage collector nothing to do, and a Go guest's
// collection inside a call (or the memory growth that comes with a bigger heap) could cost it
// milliseconds of its time budget.
var buf = make([]byte, 1024)

func decide() uint32 {
	h := handler
	if h == nil {
		Log(abi.LogError, "sdk: no handler registered: call sdk.Handle from an init function")
		return invalid
	}
	n := hostcall.InputRead(buf)
	if n > len(buf) {
		buf = make([]byte, n)
		n = hostcall.InputRead(buf)
	}
	rec := abi.Record(buf[:n])
	if err := rec.Check(); err != nil {
		Log(abi.LogError, "sdk: "+err.Error())
		return invalid
	}
	req := Request{rec: rec}
	d := h(&req)
	if d.verdict == abi.Deny && d.reason != "" {
		hostcall.ReasonWrite(d.reason)
	}
	return uint32(abi.MakeResult(d.verdict, d.strategy))
}
