package policies

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A policy may not reach the network or read the environment unless the operator allows the
// network; opa.runtime (the environment) is never allowed.
func TestNetworkAndEnvBuiltinsRefused(t *testing.T) {
	ctx := context.Background()
	for _, src := range []string{
		`package weir
allow if http.send({"method": "GET", "url": "http://127.0.0.1:1/"}).status_code == 200`,
		`package weir
allow if count(net.lookup_ip_addr("example.com")) > 0`,
		`package weir
allow if opa.runtime().env.WEIR_SECRET_KEY != ""`,
	} {
		if _, err := Compile(ctx, map[string]string{"p.rego": src}); err == nil || !strings.Contains(err.Error(), "undefined function") {
			t.Errorf("compiled: %v\n%s", err, src)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p.rego"), []byte(`package weir
allow if count(net.lookup_ip_addr("localhost")) >= 0`), 0o600)
	if _, err := LoadDir(ctx, dir, SourceOptions{}); err == nil {
		t.Fatal("a network built-in loaded without AllowNetwork")
	}
	if _, err := LoadDir(ctx, dir, SourceOptions{AllowNetwork: true}); err != nil {
		t.Fatalf("AllowNetwork: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "p.rego"), []byte(`package weir
allow if opa.runtime().env != {}`), 0o600)
	if _, err := LoadDir(ctx, dir, SourceOptions{AllowNetwork: true}); err == nil {
		t.Fatal("opa.runtime loaded with AllowNetwork")
	}
}

// An evaluation that runs past its deadline fails (closed) instead of holding the request.
func TestEvaluationDeadline(t *testing.T) {
	old := evalTimeout
	evalTimeout = 20 * time.Millisecond
	defer func() { evalTimeout = old }()
	p, err := Compile(context.Background(), map[string]string{"p.rego": `package weir
allow if {
	every i in numbers.range(1, 5000) {
		every j in numbers.range(1, 5000) { i + j > 0 }
	}
}`})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = p.Decide(context.Background(), &Input{})
	if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), "cancel") {
		t.Fatalf("a 25M-step policy decided within %v: %v", time.Since(start), err)
	}
}
