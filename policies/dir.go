package policies

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// SourceOptions say how a policy source is read.
type SourceOptions struct {
	// Logger receives one line per loaded or rejected version; nil means slog.Default().
	Logger *slog.Logger
	// BundleKey verifies signed bundles: a PEM public key (RS*, ES*, PS* algorithms) or an
	// HMAC secret (HS*). With a key, a bundle must carry a valid .signatures.json; without
	// one, signatures are not checked.
	BundleKey string
	// BundleKeyAlgorithm is the key's JWT algorithm; "" means RS256.
	BundleKeyAlgorithm string
	// AllowNetwork lets the policy call http.send and net.lookup_ip_addr (refused otherwise).
	AllowNetwork bool
}

// Dir keeps an operator's policy compiled from a source that may change: a directory of .rego
// files and data.json/data.yaml documents, or an OPA bundle file (.tar.gz, signed or not). The
// newest version that compiles and passes its own *_test.rego serves; a version that does not
// is rejected with a log line and the previous version keeps serving.
type Dir struct {
	path        string
	opts        SourceOptions
	cur         atomic.Pointer[Policy]
	fingerprint string
	revision    atomic.Pointer[string] // of the version serving
	// reloads counts versions loaded after the first; rejected, versions refused.
	reloads, rejected atomic.Uint64
}

// DirStats describes a policy source's history since it was loaded.
type DirStats struct {
	// Revision names the version serving: the bundle's manifest revision when it has one,
	// else the first 12 hex digits of the SHA-256 of its files' names and contents.
	Revision string
	Reloads  uint64 // versions that replaced the serving one
	Rejected uint64 // changed versions refused (they did not parse, compile or pass their tests)
}

// Stats returns the revision serving and the reload counts.
func (d *Dir) Stats() DirStats {
	st := DirStats{Reloads: d.reloads.Load(), Rejected: d.rejected.Load()}
	if r := d.revision.Load(); r != nil {
		st.Revision = *r
	}
	return st
}

// LoadDir compiles the policy at path (a directory or a .tar.gz bundle) and checks its tests.
func LoadDir(ctx context.Context, path string, opts SourceOptions) (*Dir, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	d := &Dir{path: path, opts: opts}
	if _, err := d.Reload(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// Policy returns the policy serving now.
func (d *Dir) Policy() *Policy { return d.cur.Load() }

// Policy lets a fixed policy stand where a source of the current policy is expected.
func (p *Policy) Policy() *Policy { return p }

// Reload recompiles the source if any of its files changed. It reports whether a new version
// now serves; on error the previous version keeps serving.
func (d *Dir) Reload(ctx context.Context) (bool, error) {
	changed, err := d.reload(ctx)
	if err != nil && d.cur.Load() != nil {
		d.rejected.Add(1)
	}
	return changed, err
}

func (d *Dir) reload(ctx context.Context) (bool, error) {
	fp, err := fingerprint(d.path)
	if err != nil {
		return false, fmt.Errorf("policies %s: %w", d.path, err)
	}
	if fp == d.fingerprint && d.cur.Load() != nil {
		return false, nil
	}
	d.fingerprint = fp // a rejected version is not retried until it changes again
	b, err := readSource(d.path, d.opts)
	if err != nil {
		return false, err
	}
	p, tests, err := compileBundle(ctx, b, d.opts.AllowNetwork)
	if err != nil {
		return false, fmt.Errorf("policies %s: %w", d.path, err)
	}
	if err := failedTests(ctx, b); err != nil {
		return false, fmt.Errorf("policies %s: %w", d.path, err)
	}
	rev := b.Manifest.Revision
	if rev == "" {
		rev = fp[:12]
	}
	if d.cur.Swap(p) != nil {
		d.reloads.Add(1)
	}
	d.revision.Store(&rev)
	d.opts.Logger.Info("policy loaded", "source", d.path, "revision", rev, "modules", policyModules(b), "tests", tests,
		"signed", len(b.Signatures.Signatures) > 0 && d.opts.BundleKey != "")
	return true, nil
}

// Watch reloads the source every interval until ctx ends, logging rejected versions.
func (d *Dir) Watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := d.Reload(ctx); err != nil {
				d.opts.Logger.Error("policy change rejected; the previous policy keeps serving", "err", err)
			}
		}
	}
}

// readSource reads a policy directory or bundle file with OPA's bundle reader, so weir sees the
// same modules and data documents as `opa run` and `opa test` would.
func readSource(path string, opts SourceOptions) (*bundle.Bundle, error) {
	l := loader.NewFileLoader().WithRegoVersion(ast.RegoV1)
	if opts.BundleKey != "" {
		alg := opts.BundleKeyAlgorithm
		if alg == "" {
			alg = "RS256"
		}
		l = l.WithBundleVerificationConfig(bundle.NewVerificationConfig(
			map[string]*bundle.KeyConfig{"weir": {Key: opts.BundleKey, Algorithm: alg}}, "weir", "", nil))
	} else {
		l = l.WithSkipBundleVerification(true)
	}
	b, err := l.AsBundle(path)
	if err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	return b, nil
}

// compileBundle prepares the bundle's policy modules (its tests aside) over its data.
func compileBundle(ctx context.Context, b *bundle.Bundle, allowNetwork bool) (*Policy, int, error) {
	var modules []*ast.Module
	tests := 0
	for _, m := range b.Modules {
		if isTestFile(m.Path) {
			for _, r := range m.Parsed.Rules {
				if strings.HasPrefix(string(r.Head.Name), "test_") {
					tests++
				}
			}
			continue
		}
		modules = append(modules, m.Parsed)
	}
	if len(modules) == 0 {
		return nil, tests, errors.New("no policy modules (.rego files other than *_test.rego)")
	}
	p, err := compileModules(ctx, modules, b.Data, allowNetwork)
	return p, tests, err
}

// policyModules counts b's modules that are not tests.
func policyModules(b *bundle.Bundle) int {
	n := 0
	for _, m := range b.Modules {
		if !isTestFile(m.Path) {
			n++
		}
	}
	return n
}

func isTestFile(path string) bool { return strings.HasSuffix(path, "_test.rego") }

// failedTests runs the bundle's *_test.rego with OPA's test runner; any failure is an error.
func failedTests(ctx context.Context, b *bundle.Bundle) error {
	results, err := runTests(ctx, b)
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
	Location string // the test's file:line
	Passed   bool
	Error    string
	Duration time.Duration
}

func runTests(ctx context.Context, b *bundle.Bundle) ([]TestResult, error) {
	modules := make(map[string]*ast.Module, len(b.Modules))
	for _, m := range b.Modules {
		modules[m.Path] = m.Parsed
	}
	ch, err := tester.NewRunner().SetDefaultRegoVersion(ast.RegoV1).SetModules(modules).
		SetStore(inmem.NewFromObject(b.Data)).RunTests(ctx, nil)
	if err != nil {
		return nil, err
	}
	var out []TestResult
	for r := range ch {
		tr := TestResult{Name: r.Package + "." + r.Name, Passed: !r.Fail && r.Error == nil, Duration: r.Duration}
		if r.Location != nil {
			tr.Location = fmt.Sprintf("%s:%d", r.Location.File, r.Location.Row)
		}
		if r.Error != nil {
			tr.Error = r.Error.Error()
		}
		out = append(out, tr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// TestDir runs the Rego tests (*_test.rego) of a policy directory or bundle, with its data
// documents, as `weir policy test DIR` and `opa test DIR` do.
func TestDir(ctx context.Context, path string, opts SourceOptions) ([]TestResult, error) {
	b, err := readSource(path, opts)
	if err != nil {
		return nil, err
	}
	return runTests(ctx, b)
}

// fingerprint hashes the names and contents of the files a policy source is read from.
func fingerprint(path string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(path, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		fmt.Fprintf(h, "%s\x00", p)
		_, err = io.Copy(h, f)
		return err
	})
	return hex.EncodeToString(h.Sum(nil)), err
}
