package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"go/format"
	"go/version"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/weirproject/weir/plugins"
	"github.com/weirproject/weir/sdk/abi"
)

// sdkSource is the Go guest SDK (stdlib only) as this binary was built with it: `weir plugin new`
// writes it into the new module, so a plugin author needs nothing but weir and Go, and the SDK
// always speaks this binary's ABI.
//
//go:embed sdk
var sdkSource embed.FS

// minGo is the oldest Go that builds a plugin: //go:wasmexport arrived in Go 1.24.
const minGo = "go1.24"

const pluginUsage = `usage:
  weir plugin new NAME      write NAME/: a Go plugin module with the weir SDK inside, its test and
                            a plugins.json that loads it
  weir plugin build [DIR]   build the plugin module in DIR (default .) to NAME.wasm and check that
                            weir loads it (DIR/plugins.json if there is one)
  weir plugin check DIR     load a plugins directory (plugins.json and the modules it names) as
                            weir --plugins DIR would, and report each plugin
  weir plugin c-header      print weir.h, the ABI for C plugins (clang --target=wasm32)`

// pluginCommand is `weir plugin ...`, the plugin author's tools.
func pluginCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stdout, pluginUsage)
		if len(args) == 0 {
			return errors.New("weir plugin: which command?")
		}
		return nil
	}
	switch cmd, rest := args[0], args[1:]; {
	case cmd == "new" && len(rest) == 1:
		return pluginNew(rest[0], stdout)
	case cmd == "build" && len(rest) <= 1:
		dir := "."
		if len(rest) == 1 {
			dir = rest[0]
		}
		return pluginBuild(ctx, dir, stdout, stderr)
	case cmd == "check" && len(rest) == 1:
		return pluginCheck(ctx, rest[0], stdout, stderr)
	case cmd == "c-header" && len(rest) == 0:
		h, err := sdkSource.ReadFile("sdk/c/weir.h")
		if err == nil {
			_, err = stdout.Write(h)
		}
		return err
	}
	fmt.Fprintln(stderr, pluginUsage)
	return fmt.Errorf("weir plugin: bad arguments %q", args)
}

var pluginName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// sdkDir is where a new module keeps its copy of the SDK, a module of its own that go.mod's
// replace directive points at.
const sdkDir = "weir-sdk"

func pluginNew(name string, stdout io.Writer) error {
	if !pluginName.MatchString(name) {
		return fmt.Errorf("weir plugin new: %q: a plugin's name is lower-case letters, digits and '-', starting with a letter", name)
	}
	if _, err := checkGo(); err != nil {
		return err
	}
	if _, err := os.Stat(name); err == nil {
		return fmt.Errorf("weir plugin new: %s already exists", name)
	}
	files := map[string]string{
		"go.mod":                           newGoMod(name),
		"main.go":                          newMain,
		"main_test.go":                     newTest,
		"plugins.json":                     newManifest(name),
		"README.md":                        newReadme(name),
		filepath.Join(sdkDir, "go.mod"):    "module github.com/weirproject/weir\n\ngo " + strings.TrimPrefix(minGo, "go") + "\n",
		filepath.Join(sdkDir, "README.md"): "The weir plugin SDK (ABI " + abiVersion() + "), written by `weir plugin new` from the weir binary.\nDo not edit: a newer weir writes a newer copy (`weir plugin new` in an empty folder).\n",
	}
	err := fs.WalkDir(sdkSource, "sdk", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.go") || path.Ext(p) == ".h" {
			return err
		}
		b, err := sdkSource.ReadFile(p)
		files[filepath.Join(sdkDir, filepath.FromSlash(p))] = string(b)
		return err
	})
	if err != nil {
		return err
	}
	for rel, text := range files {
		if strings.HasSuffix(rel, ".go") && !strings.HasPrefix(rel, sdkDir) {
			b, err := format.Source([]byte(text))
			if err != nil {
				return fmt.Errorf("weir plugin new: %s: %w", rel, err)
			}
			text = string(b)
		}
		p := filepath.Join(name, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, `weir: wrote %[1]s/, a Go plugin module with the weir SDK (ABI %[2]s) in %[1]s/%[3]s
  cd %[1]s
  go test ./...          # the handler, natively
  weir plugin build      # %[1]s.wasm, checked by loading plugins.json as weir would
  weir --plugins .       # serve with it
`, name, abiVersion(), sdkDir)
	return nil
}

func abiVersion() string { return fmt.Sprintf("%d.%d", abi.Major, abi.Minor) }

// checkGo finds the go command and checks that it is new enough to build a plugin.
func checkGo() (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("weir plugin: no go command on PATH: building a Go plugin needs Go %s or later (https://go.dev/dl/)", strings.TrimPrefix(minGo, "go"))
	}
	cmd := exec.Command(goBin, "env", "GOVERSION")
	cmd.Dir = os.TempDir() // the local toolchain, not one a go.mod here asks for
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("weir plugin: %s env GOVERSION: %v", goBin, err)
	}
	v := strings.TrimSpace(string(out))
	if version.IsValid(v) && version.Compare(v, minGo) < 0 {
		return "", fmt.Errorf("weir plugin: %s is %s; building a Go plugin needs Go %s or later (//go:wasmexport)", goBin, v, strings.TrimPrefix(minGo, "go"))
	}
	return goBin, nil
}

var moduleLine = regexp.MustCompile(`(?m)^module\s+"?([^"\s]+)"?\s*$`)

// pluginBuild builds the Go plugin module in dir to NAME.wasm (NAME: the module path's last
// element) and checks that weir loads it.
func pluginBuild(ctx context.Context, dir string, stdout, stderr io.Writer) error {
	goBin, err := checkGo()
	if err != nil {
		return err
	}
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return fmt.Errorf("weir plugin build: %s is not a Go module (write one with weir plugin new NAME): %w", dir, err)
	}
	m := moduleLine.FindSubmatch(mod)
	if m == nil {
		return fmt.Errorf("weir plugin build: %s has no module line", filepath.Join(dir, "go.mod"))
	}
	name := path.Base(string(m[1]))
	out := name + ".wasm"
	cmd := exec.CommandContext(ctx, goBin, "build", "-buildmode=c-shared", "-trimpath", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = stderr, stderr
	fmt.Fprintf(stdout, "weir: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o %s .\n", out)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("weir plugin build: go build: %w", err)
	}
	fi, err := os.Stat(filepath.Join(dir, out))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "weir: built %s (%.1f MB)\n", filepath.Join(dir, out), float64(fi.Size())/1e6)
	checkDir := dir
	if _, err := os.Stat(filepath.Join(dir, plugins.ManifestFile)); errors.Is(err, fs.ErrNotExist) {
		// No manifest: check the module alone, with the defaults.
		if checkDir, err = os.MkdirTemp("", "weir-plugin-check-"); err != nil {
			return err
		}
		defer os.RemoveAll(checkDir)
		b, _ := os.ReadFile(filepath.Join(dir, out))
		manifest := fmt.Sprintf(`{"plugins": [{"name": %q, "wasm": %q}]}`, name, out)
		if err := errors.Join(os.WriteFile(filepath.Join(checkDir, out), b, 0o644),
			os.WriteFile(filepath.Join(checkDir, plugins.ManifestFile), []byte(manifest), 0o644)); err != nil {
			return err
		}
	}
	return pluginCheck(ctx, checkDir, stdout, stderr)
}

// pluginCheck loads dir as `weir --plugins dir` does at start-up.
func pluginCheck(ctx context.Context, dir string, stdout, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := plugins.LoadDir(ctx, dir, plugins.Options{Logger: log})
	if err != nil {
		return fmt.Errorf("weir plugin check: %s: %w", dir, err)
	}
	defer d.Close(context.Background())
	for _, st := range d.Set().Stats() {
		fmt.Fprintf(stdout, "weir: plugin %s loads: exports and ABI %s checked, first instance started (%v)\n",
			st.Name, abiVersion(), st.LoadTime.Round(time.Millisecond))
	}
	return nil
}

func newGoMod(name string) string {
	return "module " + name + `

go ` + strings.TrimPrefix(minGo, "go") + `

require github.com/weirproject/weir v0.0.0

// The SDK ships inside this module: weir-sdk is what ` + "`weir plugin new`" + ` wrote.
replace github.com/weirproject/weir => ./` + sdkDir + "\n"
}

func newManifest(name string) string {
	return fmt.Sprintf(`{"plugins": [
  {"name": %q, "wasm": "%s.wasm", "buckets": ["*"], "timeout": "10ms"}
]}
`, name, name)
}

func newReadme(name string) string {
	return "# " + name + `

A weir plugin in Go, written by ` + "`weir plugin new`" + `. Go ` + strings.TrimPrefix(minGo, "go") + ` or later.

	go test ./...         # the handler, natively (sdktest)
	weir plugin build     # ` + name + `.wasm, and a check that weir loads plugins.json
	weir --plugins .      # serve with it

The SDK's reference: ` + "`go doc github.com/weirproject/weir/sdk`" + ` here, and ` + sdkDir + `/sdk/README.md.
`
}

const newMain = `package main

import (
	"strings"

	"github.com/weirproject/weir/sdk"
)

// Register the handler in init: the module is a WASI reactor, whose main never runs.
func init() { sdk.Handle(decide) }

func main() {}

// decide runs once per request the manifest applies the plugin to. It passes, proposes a
// concurrency strategy, or denies with a reason the client sees in its 403.
func decide(r *sdk.Request) sdk.Decision {
	switch {
	case r.Method() == "DELETE" && strings.HasSuffix(r.Key(), ".log"):
		return sdk.Deny("logs are kept: " + r.Key() + " may not be deleted")
	case strings.HasPrefix(r.Key(), "locks/"):
		return sdk.Propose(sdk.Lease)
	}
	return sdk.Pass()
}
`

const newTest = `package main

import (
	"testing"

	"github.com/weirproject/weir/sdk/abi"
	"github.com/weirproject/weir/sdk/sdktest"
)

func TestDecide(t *testing.T) {
	for _, c := range []struct {
		method, key              string
		verdict                  abi.Verdict
		strategy, reason         string
	}{
		{"DELETE", "app.log", abi.Deny, "", "logs are kept: app.log may not be deleted"},
		{"PUT", "locks/a", abi.Propose, "lease", ""},
		{"PUT", "a.txt", abi.Pass, "", ""},
	} {
		in := &abi.Input{Bucket: abi.Bucket{Name: "b"}, Object: abi.Object{Key: c.key}, Request: abi.Request{Method: c.method}}
		got, err := sdktest.Run(decide, in, nil)
		if err != nil || got.Verdict != c.verdict || got.Strategy != c.strategy || got.Reason != c.reason {
			t.Errorf("%s %s: %+v, %v; want %v %q %q", c.method, c.key, got, err, c.verdict, c.strategy, c.reason)
		}
	}
}
`
