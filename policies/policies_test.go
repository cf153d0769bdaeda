package policies

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/weirproject/weir/sdk/abi"
)

// TestDefaultPolicyRegoTests runs default_test.rego through OPA's own test runner.
func TestDefaultPolicyRegoTests(t *testing.T) {
	modules := map[string]*ast.Module{}
	for name, src := range map[string]string{"default.rego": defaultPolicy, "default_test.rego": mustRead(t, "default_test.rego")} {
		m, err := ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatal(err)
		}
		modules[name] = m
	}
	ch, err := tester.NewRunner().SetModules(modules).RunTests(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for r := range ch {
		n++
		if r.Fail || r.Error != nil {
			t.Errorf("%s: fail=%v err=%v", r.Name, r.Fail, r.Error)
		}
	}
	if n < 5 {
		t.Fatalf("ran %d Rego tests", n)
	}
}

func sampleInput(principal string, root bool, owner string) *Input {
	return &Input{Input: abi.Input{
		Action:    "s3:PutObject",
		Principal: abi.Principal{AccessKey: principal, Name: principal, Groups: []string{"g"}, Root: root},
		Bucket:    abi.Bucket{Name: "data", Owner: owner, Strategy: "etag", Tags: map[string]string{"team": "a"}},
		Object:    abi.Object{Key: "k", Exists: true, ETag: `"abc"`, Size: 4096, Generation: 7, ContentType: "text/plain", LeaseState: "available"},
		Request:   abi.Request{Method: "PUT", Headers: map[string]string{"if-match": `"abc"`}, Size: 4096, RemoteAddr: "127.0.0.1:1", Time: time.Now()},
	}}
}

func TestDefaultPolicyDecides(t *testing.T) {
	p, err := Default(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in    *Input
		allow bool
	}{
		{sampleInput("ROOT", true, "ALICE"), true},
		{sampleInput("ALICE", false, "ALICE"), true},
		{sampleInput("BOB", false, "ALICE"), false},
	} {
		d, err := p.Decide(context.Background(), tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allow != tc.allow || d.Strategy != "" {
			t.Fatalf("%s: %+v", tc.in.Principal.AccessKey, d)
		}
		if !d.Allow && d.Reason != "BOB may not s3:PutObject on bucket data: it belongs to another user" {
			t.Fatalf("reason %q", d.Reason)
		}
	}
}

func TestPolicyFaultsFailClosed(t *testing.T) {
	ctx := context.Background()
	if _, err := Compile(ctx, map[string]string{"bad.rego": "package weir\nallow if {"}); err == nil {
		t.Fatal("a policy that does not parse compiled")
	}
	cases := map[string]string{
		"unknown strategy": "package weir\nallow := true\nstrategy := \"optimistic\"",
		"allow not a bool": "package weir\nallow := \"yes\"",
		"conflict at eval": "package weir\nallow := true\nstrategy := \"etag\" if input.action\nstrategy := \"lease\" if input.action",
	}
	for name, src := range cases {
		p, err := Compile(ctx, map[string]string{"p.rego": src})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := p.Decide(ctx, sampleInput("A", false, "A")); !errors.Is(err, ErrPolicy) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	p, err := Compile(ctx, map[string]string{"p.rego": `package weir
allow if input.object.generation == 7
strategy := "lease" if input.bucket.tags.team == "a"
read_requires_lease := true
reason := "because"`})
	if err != nil {
		t.Fatal(err)
	}
	d, err := p.Decide(ctx, sampleInput("A", false, "B"))
	if err != nil || !d.Allow || d.Strategy != "lease" || !d.ReadRequiresLease || d.Reason != "because" {
		t.Fatalf("input fields as the policy sees them: %+v %v", d, err)
	}
}

// BenchmarkDecide measures one decision with a prebuilt input: the built-in policy and each
// example policy, as the gateway runs them. It reports the median (p50-ns) beside the mean.
func BenchmarkDecide(b *testing.B) {
	ctx := context.Background()
	builtIn, err := Default(ctx)
	if err != nil {
		b.Fatal(err)
	}
	sources := []struct {
		name   string
		policy *Policy
	}{{"built-in", builtIn}}
	entries, err := os.ReadDir("../examples/policies")
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			d, err := LoadDir(ctx, filepath.Join("../examples/policies", e.Name()), SourceOptions{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			sources = append(sources, struct {
				name   string
				policy *Policy
			}{e.Name(), d.Policy()})
		}
	}
	in := sampleInput("BOB", false, "ALICE")
	run := func(b *testing.B, decide func(context.Context, *Input) (Answer, error)) {
		b.ReportAllocs()
		var took []time.Duration
		for b.Loop() {
			start := time.Now()
			if _, err := decide(ctx, in); err != nil {
				b.Fatal(err)
			}
			took = append(took, time.Since(start))
		}
		slices.Sort(took)
		b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns")
	}
	for _, src := range sources {
		// evaluate: OPA evaluates the prepared query (a memo miss, or a policy that is not
		// memoised); memoised: the answer for an (action, principal, bucket, proposal) seen before.
		b.Run(src.name+"/evaluate", func(b *testing.B) { run(b, src.policy.eval) })
		if src.policy.memo != nil {
			b.Run(src.name+"/memoised", func(b *testing.B) { run(b, src.policy.Decide) })
		}
	}
}

func mustRead(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
