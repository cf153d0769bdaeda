// Package readonly tests the hand-written WAT plugin: the checked-in plugin.wasm must be what
// plugin.wat assembles to (when wat2wasm is installed), and it must run in the real host.
package readonly

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/weirproject/weir/examples/plugins/readonlytest"
	"github.com/weirproject/weir/plugins/pluginstest"
)

func TestCheckedInMatchesSource(t *testing.T) {
	wat2wasm := pluginstest.RequireTool(t, "wat2wasm") // apt-get install wabt
	out := filepath.Join(t.TempDir(), "plugin.wasm")
	if b, err := exec.Command(wat2wasm, "plugin.wat", "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	built, _ := os.ReadFile(out)
	checked, _ := os.ReadFile("plugin.wasm")
	if !bytes.Equal(built, checked) {
		t.Fatal("plugin.wasm is stale: run wat2wasm plugin.wat -o plugin.wasm")
	}
}

func TestWasm(t *testing.T) {
	wasm, err := os.ReadFile("plugin.wasm")
	if err != nil {
		t.Fatal(err)
	}
	readonlytest.Check(t, wasm)
}
