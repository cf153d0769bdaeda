package policies

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"
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
	return &Input{
		Action:    "s3:PutObject",
		Principal: Principal{AccessKey: principal, Name: principal, Groups: []string{"g"}, Root: root},
		Bucket:    &Bucket{Name: "data", Owner: owner, Strategy: "etag", Tags: map[string]string{"team": "a"}},
		Object:    &Object{Key: "k", Exists: true, ETag: `"abc"`, Size: 4096, Generation: 7, ContentType: "text/plain", LeaseState: "available"},
		Request:   Request{Method: "PUT", Headers: map[string]string{"if-match": `"abc"`}, Size: 4096, RemoteAddr: "127.0.0.1:1", Time: time.Now()},
	}
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

// BenchmarkDecide measures one decision of the built-in policy with a prebuilt input.
func BenchmarkDecide(b *testing.B) {
	p, err := Default(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	in := sampleInput("BOB", false, "ALICE")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Decide(ctx, in); err != nil {
			b.Fatal(err)
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
