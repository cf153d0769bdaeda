// Command modes is the host's test guest: one module whose behaviour each manifest entry picks
// with its config, a JSON string, so that every host test shares one Go build.
//
//	"pass", "propose:<strategy>", "deny:<reason>"
//	"echo"       deny with the decoded input, as JSON, as the reason
//	"exclusive"  deny "shared" if another call runs in this instance at the same time
//	"loop"       never return (timeout)
//	"panic"      panic (trap)
//	"oom"        allocate until memory runs out (memory)
//	"bigreason"  write a 2 KiB reason with the raw import (output)
//	"badcode"    propose an unknown strategy (output)
//	"log"        log at each level, then pass
//	"clock"      deny "real" if time.Now is 2025 or later (wazero's fake clock says 2022), else "fake"
//	"object-tag:<k>=<v>"  deny a PutObject or DeleteObject with "object tagged <k>=<v>" if the
//	             object's tag k is v, else pass
package main

import (
	"encoding/json"
	"strings"
	"time"
	"unsafe"

	"github.com/weirproject/weir/sdk"
	"github.com/weirproject/weir/sdk/abi"
)

//go:wasmimport weir_v1 reason_write
func reasonWrite(ptr unsafe.Pointer, n uint32)

func init() { sdk.Handle(decide) }

func main() {}

var (
	busy bool
	hog  [][]byte
	sink int
)

func decide(r *sdk.Request) sdk.Decision {
	mode := strings.Trim(string(sdk.Config()), `"`)
	switch {
	case mode == "pass":
		return sdk.Pass()
	case strings.HasPrefix(mode, "propose:"):
		return sdk.Propose(strings.TrimPrefix(mode, "propose:"))
	case strings.HasPrefix(mode, "deny:"):
		return sdk.Deny(strings.TrimPrefix(mode, "deny:"))
	case mode == "echo":
		b, _ := json.Marshal(r.Input())
		return sdk.Deny(string(b))
	case mode == "exclusive":
		if busy {
			return sdk.Deny("shared")
		}
		busy = true
		for i := range 20000 {
			sink += i
		}
		busy = false
		return sdk.Pass()
	case mode == "loop":
		for {
			sink++
		}
	case mode == "panic":
		panic("boom: " + r.Key())
	case mode == "oom":
		for {
			hog = append(hog, make([]byte, 4<<20))
		}
	case mode == "bigreason":
		b := make([]byte, 2048)
		reasonWrite(unsafe.Pointer(&b[0]), uint32(len(b)))
		return sdk.Deny("")
	case mode == "badcode":
		return sdk.Propose("optimistic")
	case mode == "log":
		for l := abi.LogDebug; l <= abi.LogError; l++ {
			sdk.Log(l, "hello "+r.Key())
		}
		for range 100 {
			sdk.Log(abi.LogInfo, "chatty")
		}
		return sdk.Pass()
	case strings.HasPrefix(mode, "object-tag:"):
		k, v, _ := strings.Cut(strings.TrimPrefix(mode, "object-tag:"), "=")
		write := r.Action() == "s3:PutObject" || r.Action() == "s3:DeleteObject"
		if got, ok := r.ObjectTag(k); write && ok && got == v {
			return sdk.Deny("object tagged " + k + "=" + v)
		}
		return sdk.Pass()
	case mode == "clock":
		if time.Now().Year() >= 2025 {
			return sdk.Deny("real")
		}
		return sdk.Deny("fake")
	}
	return sdk.Deny("unknown mode " + mode)
}
