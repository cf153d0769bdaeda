package pluginexamples

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/weirproject/weir/examples/plugins/readonlytest"
	"github.com/weirproject/weir/plugins/pluginstest"
)

// TestCReadonly builds the C example, c-readonly/readonly.c, with clang and lld against
// sdk/c/weir.h, and runs it in the real host.
func TestCReadonly(t *testing.T) {
	clang := pluginstest.RequireTool(t, "clang") // apt-get install clang lld
	pluginstest.RequireTool(t, "wasm-ld")
	out := filepath.Join(t.TempDir(), "readonly.wasm")
	cmd := exec.Command(clang, "--target=wasm32", "-O2", "-nostdlib", "-Wl,--no-entry", "-Wall", "-Werror",
		"-I", "../../sdk/c", "-o", out, "c-readonly/readonly.c")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("clang: %v\n%s", err, b)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	readonlytest.Check(t, wasm)
}
