package plugins_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestImports keeps the dependency rules: the SDK (compiled into every plugin) uses only the
// standard library, and the host depends on wazero and sdk/abi, never on the engine, the
// policy engine or the HTTP stack (wazero brings golang.org/x/sys).
func TestImports(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	deps := func(pkgs ...string) []string {
		args := append([]string{"list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}"}, pkgs...)
		out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), args...).CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		return strings.Fields(string(out))
	}
	const mod = "github.com/weirproject/weir/"
	for _, d := range deps("../sdk/...") {
		if !strings.HasPrefix(d, mod+"sdk") {
			t.Errorf("sdk depends on %s; it may use the standard library only", d)
		}
	}
	for _, d := range deps(".") {
		for _, bad := range []string{mod + "engine", mod + "policies", mod + "gateway", "github.com/open-policy-agent/", "github.com/labstack/"} {
			if strings.HasPrefix(d, bad) {
				t.Errorf("plugins depends on %s; it may use wazero and sdk/abi only", d)
			}
		}
	}
}
