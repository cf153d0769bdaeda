// Package pluginstest helps tests build and load plugins: it compiles Go guest packages to
// wasm with the running toolchain and writes plugins directories. It owns no host logic and
// caches nothing on disk beyond the Go build cache and CacheDir.
package pluginstest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	mu     sync.Mutex
	builds = map[string]*build{}
)

type build struct {
	once sync.Once
	wasm []byte
	out  string
	err  error
}

// Build compiles the Go main package in pkgDir as a WASI reactor (GOOS=wasip1 GOARCH=wasm
// go build -buildmode=c-shared -trimpath, CGO_ENABLED=0) with the go command of the running
// toolchain, into t.TempDir(), and returns the module's bytes. Builds are memoised per
// process, so tests that share a guest build it once; different guests build in parallel.
func Build(t testing.TB, pkgDir string) []byte {
	t.Helper()
	abs, err := filepath.Abs(pkgDir)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	b := builds[abs]
	if b == nil {
		b = &build{}
		builds[abs] = b
	}
	mu.Unlock()
	b.once.Do(func() {
		out := filepath.Join(t.TempDir(), filepath.Base(abs)+".wasm")
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"),
			"build", "-buildmode=c-shared", "-trimpath", "-o", out, ".")
		cmd.Dir = abs
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		outb, err := cmd.CombinedOutput()
		if err != nil {
			b.out, b.err = string(outb), err
			return
		}
		b.wasm, b.err = os.ReadFile(out)
	})
	if b.err != nil {
		t.Fatalf("pluginstest: building %s: %v\n%s", pkgDir, b.err, b.out)
	}
	return b.wasm
}

// WriteDir writes a plugins directory into a new t.TempDir(): manifest as plugins.json and
// each of files (name → bytes). It returns the directory.
func WriteDir(t testing.TB, manifest string, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	Rewrite(t, dir, manifest, files)
	return dir
}

// Rewrite replaces plugins.json and writes files in an existing directory (for reload tests).
// Modules are written first, the manifest last, each through a rename, as an operator's
// deployment should.
func Rewrite(t testing.TB, dir, manifest string, files map[string][]byte) {
	t.Helper()
	write := func(name string, b []byte) {
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	for name, b := range files {
		write(name, b)
	}
	if manifest != "" {
		write("plugins.json", []byte(manifest))
	}
}

// RequireTool skips the test when the program name is not on PATH, with a message naming it;
// but when CI=true it fails the test instead, since CI must provide every program (.ci/run
// installs them).
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed, and CI must run this test (.ci/run installs it)", name)
	}
	t.Skipf("%s is not installed", name)
	return ""
}

// CacheDir is a compilation cache directory (plugins.Options.CacheDir) shared by every test
// process of this user: compiling a Go guest takes seconds, minutes under -race on a busy
// machine, so a test that loads the same modules as others should not compile them again.
// Like the Go build cache it is kept between runs; wazero keys it by module content and its
// own version, and writes each entry by a rename, so concurrent test processes share it safely.
func CacheDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("weir-plugin-test-cache-%d", os.Getuid()))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}
