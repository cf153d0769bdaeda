package policies

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"
)

// Dir keeps an operator's policy directory compiled. The newest version that compiles and
// passes its own *_test.rego serves; a change that does not is rejected with a log line and the
// previous version keeps serving.
type Dir struct {
	path        string
	log         *slog.Logger
	cur         atomic.Pointer[Policy]
	fingerprint string
}

// LoadDir compiles the policy in path (every .rego file below it) and checks its tests.
func LoadDir(ctx context.Context, path string, log *slog.Logger) (*Dir, error) {
	if log == nil {
		log = slog.Default()
	}
	d := &Dir{path: path, log: log}
	if _, err := d.Reload(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// Policy returns the policy serving now.
func (d *Dir) Policy() *Policy { return d.cur.Load() }

// Policy lets a fixed policy stand where a source of the current policy is expected.
func (p *Policy) Policy() *Policy { return p }

// Reload recompiles the directory if any file changed. It reports whether a new version now
// serves; on error the previous version keeps serving.
func (d *Dir) Reload(ctx context.Context) (bool, error) {
	files, fp, err := readRego(d.path)
	if err != nil {
		return false, err
	}
	if fp == d.fingerprint && d.cur.Load() != nil {
		return false, nil
	}
	d.fingerprint = fp // a rejected version is not retried until it changes again
	policy, tests := map[string]string{}, map[string]string{}
	for name, src := range files {
		if strings.HasSuffix(name, "_test.rego") {
			tests[name] = src
		} else {
			policy[name] = src
		}
	}
	if len(policy) == 0 {
		return false, fmt.Errorf("policies %s: no .rego files", d.path)
	}
	p, err := Compile(ctx, policy)
	if err != nil {
		return false, fmt.Errorf("policies %s: %w", d.path, err)
	}
	if err := runTests(ctx, files); err != nil {
		return false, fmt.Errorf("policies %s: %w", d.path, err)
	}
	d.cur.Store(p)
	d.log.Info("policy loaded", "dir", d.path, "files", len(policy), "tests", len(tests))
	return true, nil
}

// Watch reloads the directory every interval until ctx ends, logging rejected versions.
func (d *Dir) Watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := d.Reload(ctx); err != nil {
				d.log.Error("policy change rejected; the previous policy keeps serving", "err", err)
			}
		}
	}
}

// readRego reads every .rego file under dir and fingerprints names, sizes and contents.
func readRego(dir string) (map[string]string, string, error) {
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(path, ".rego") {
			return err
		}
		src, err := os.ReadFile(path)
		files[path] = string(src)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00%s\x00", n, len(files[n]), files[n])
	}
	return files, hex.EncodeToString(h.Sum(nil)), nil
}

// runTests runs the *_test.rego among files with OPA's test runner; any failure is an error.
func runTests(ctx context.Context, files map[string]string) error {
	results, err := testModules(ctx, files)
	if err != nil {
		return err
	}
	var failed []string
	for _, r := range results {
		if !r.Passed {
			failed = append(failed, r.Name)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("policy tests failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// TestResult is one Rego test's outcome.
type TestResult struct {
	Name     string
	Passed   bool
	Error    string
	Duration time.Duration
}

func testModules(ctx context.Context, files map[string]string) ([]TestResult, error) {
	modules := map[string]*ast.Module{}
	for name, src := range files {
		m, err := ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, err
		}
		modules[name] = m
	}
	ch, err := tester.NewRunner().SetModules(modules).RunTests(ctx, nil)
	if err != nil {
		return nil, err
	}
	var out []TestResult
	for r := range ch {
		tr := TestResult{Name: r.Package + "." + r.Name, Passed: !r.Fail && r.Error == nil, Duration: r.Duration}
		if r.Error != nil {
			tr.Error = r.Error.Error()
		}
		out = append(out, tr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// TestDir runs the Rego tests (*_test.rego) of a policy directory, as `weir policy test DIR`
// and `opa test DIR` do.
func TestDir(ctx context.Context, dir string) ([]TestResult, error) {
	files, _, err := readRego(dir)
	if err != nil {
		return nil, err
	}
	return testModules(ctx, files)
}
