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

// bufSize is the size of the last record, the guess for the next one.
var bufSize = 512

func decide() uint32 {
	h := handler
	if h == nil {
		Log(abi.LogError, "sdk: no handler registered: call sdk.Handle from an init function")
		return invalid
	}
	// A fresh buffer per call: the Request's strings alias it and may outlive the call.
	buf := make([]byte, bufSize)
	n := hostcall.InputRead(buf)
	if n > len(buf) {
		buf = make([]byte, n)
		n = hostcall.InputRead(buf)
	}
	bufSize = max(n, 256)
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
