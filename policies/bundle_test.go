package policies

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
)

// A policy that reads its allow-list from data: the data documents must reach both the
// evaluation and the policy's own tests.
const dataPolicy = `package weir

allow if input.principal.name in data.weir_config.writers
reason := "not a listed writer" if not allow
`

const dataPolicyTest = `package weir_test

import data.weir

test_listed if weir.allow with input as {"principal": {"name": "ann"}}
test_unlisted if not weir.allow with input as {"principal": {"name": "eve"}}
`

// TestDirDataDocuments: data.json and data.yaml files join the policy at their directory's
// path, as in an OPA bundle.
func TestDirDataDocuments(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.rego"), dataPolicy)
	writeFile(t, filepath.Join(dir, "p_test.rego"), dataPolicyTest)
	writeFile(t, filepath.Join(dir, "weir_config", "data.yaml"), "writers: [ann]\n")
	d, err := LoadDir(ctx, dir, SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !decideAs(t, d.Policy(), "ann").Allow || decideAs(t, d.Policy(), "eve").Allow {
		t.Fatal("the allow-list from data.yaml is not applied")
	}
	// The data is part of the source: a change to it reloads, and a change that breaks the
	// policy's tests is rejected.
	writeFile(t, filepath.Join(dir, "weir_config", "data.yaml"), "writers: [ann, eve]\n")
	if _, err := d.Reload(ctx); err == nil || !strings.Contains(err.Error(), "test_unlisted") {
		t.Fatalf("data that fails the policy's tests was accepted: %v", err)
	}
	if decideAs(t, d.Policy(), "eve").Allow {
		t.Fatal("the rejected data serves")
	}
	results, err := TestDir(ctx, dir, SourceOptions{})
	if err != nil || len(results) != 2 {
		t.Fatalf("TestDir: %v %v", results, err)
	}
}

// TestBundles: an OPA bundle file serves like a directory; a signed bundle is verified with the
// configured key, and a tampered or unsigned one is then refused.
func TestBundles(t *testing.T) {
	ctx := context.Background()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	private := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	public := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	dir := t.TempDir()

	unsigned := writeBundle(t, filepath.Join(dir, "unsigned.tar.gz"), "", nil)
	d, err := LoadDir(ctx, unsigned, SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !decideAs(t, d.Policy(), "ann").Allow || decideAs(t, d.Policy(), "eve").Allow {
		t.Fatal("the unsigned bundle's policy and data are not applied")
	}
	if _, err := LoadDir(ctx, unsigned, SourceOptions{BundleKey: public}); err == nil {
		t.Fatal("an unsigned bundle was accepted although a key is configured")
	}

	signed := writeBundle(t, filepath.Join(dir, "signed.tar.gz"), private, nil)
	d, err = LoadDir(ctx, signed, SourceOptions{BundleKey: public})
	if err != nil {
		t.Fatal(err)
	}
	if !decideAs(t, d.Policy(), "ann").Allow {
		t.Fatal("the signed bundle's policy is not applied")
	}

	// The same signature over other data: the digest no longer matches.
	tampered := writeBundle(t, filepath.Join(dir, "tampered.tar.gz"), private, []string{"ann", "eve"})
	if _, err := LoadDir(ctx, tampered, SourceOptions{BundleKey: public}); err == nil || !strings.Contains(err.Error(), "digest mismatch") {
		t.Fatalf("a tampered bundle: %v", err)
	}
	// Hot reload of the file: a tampered bundle is rejected and the signed one keeps serving.
	if err := os.Rename(tampered, signed); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Reload(ctx); err == nil {
		t.Fatal("reload accepted a tampered bundle")
	}
	if !decideAs(t, d.Policy(), "ann").Allow || decideAs(t, d.Policy(), "eve").Allow {
		t.Fatal("the previous bundle stopped serving")
	}
}

// writeBundle writes a bundle of dataPolicy with writers [ann] to path, signed with the PEM
// private key when one is given. tamperedWriters, if set, replaces the data after signing.
func writeBundle(t *testing.T, path, privateKey string, tamperedWriters []string) string {
	t.Helper()
	b := bundle.Bundle{Data: map[string]any{"weir_config": map[string]any{"writers": []any{"ann"}}}}
	for name, src := range map[string]string{"/p.rego": dataPolicy, "/p_test.rego": dataPolicyTest} {
		m, err := ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatal(err)
		}
		b.Modules = append(b.Modules, bundle.ModuleFile{Path: name, URL: name, Parsed: m, Raw: []byte(src)})
	}
	b.Manifest.Init()
	if privateKey != "" {
		if err := b.GenerateSignature(bundle.NewSigningConfig(privateKey, "RS256", ""), "weir", true); err != nil {
			t.Fatal(err)
		}
	}
	if tamperedWriters != nil {
		w := make([]any, len(tamperedWriters))
		for i, s := range tamperedWriters {
			w[i] = s
		}
		b.Data = map[string]any{"weir_config": map[string]any{"writers": w}}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := bundle.NewWriter(f).UseModulePath(true).Write(b); err != nil {
		t.Fatal(err)
	}
	return path
}

func decideAs(t *testing.T, p *Policy, name string) Answer {
	t.Helper()
	in := sampleInput(name, false, "someone")
	in.Principal.Name = name
	d, err := p.Decide(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func writeFile(t *testing.T, path, src string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestInputAnalysis: the gateway reads the object's metadata for a policy only when the policy
// may look at input.object, and a policy that reads only named input paths (not the object,
// not the request's time) and calls no non-deterministic builtin has its decisions memoised.
func TestInputAnalysis(t *testing.T) {
	for _, c := range []struct {
		src            string
		object, stable bool
	}{
		{"allow if input.principal.root", false, true},
		{"allow if input.bucket.tags.x == input.principal.name", false, true},
		{"allow if input.proposal.strategy == \"etag\"", false, true},
		{"allow if input.bucket.tags.x == input.request.headers.y", false, true},
		{"allow if input.request.size < 1024", false, true},
		{"allow if input.request.time > \"2026\"", false, false},
		{"allow if count(input.request) > 0", false, false},
		{"allow if input.object.size < 10", true, false},
		{"allow if endswith(input.object.key, \".log\")", false, true},
		{"allow if { input.object.key == \"k\"; input.object.exists }", true, false},
		{"allow if input.object", true, false},
		{"allow if input[\"object\"].exists", true, false},
		{"allow if { some k; input[k].size < 10 }", true, false},
		{"allow if { x := input; x.object.exists }", true, false},
		{"import input.object as o\nallow if o.exists", true, false},
		{"f(x) := x.size\nallow if f(input.object) < 3", true, false},
		{"allow if count(object.keys(input.principal)) > 0", false, true},
		{"allow if json.marshal(input) != \"\"", true, false},
		{"allow if { some x in input.principal.groups; x == \"ops\" }", false, true},
		{"allow if time.now_ns() > 0", false, false},
		{"allow if { input.principal.root; rand.intn(\"x\", 10) > 3 }", false, false},
	} {
		p, err := Compile(context.Background(), map[string]string{"p.rego": "package weir\n" + c.src + "\n"})
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		if p.NeedsObject() != c.object || (p.memo != nil) != c.stable {
			t.Errorf("%q: reads object %v, memoised %v; want %v, %v", c.src, p.NeedsObject(), p.memo != nil, c.object, c.stable)
		}
	}
	for src, want := range map[string]bool{
		"allow if input.principal.root":                    false,
		"allow if input.request.size < 10":                 false,
		"allow if input.request.headers[\"x-a\"] == \"1\"": true,
		"allow if count(input.request) > 0":                true,
		"allow if json.marshal(input) != \"\"":             true,
	} {
		p, err := Compile(context.Background(), map[string]string{"p.rego": "package weir\n" + src + "\n"})
		if err != nil || p.NeedsHeaders() != want {
			t.Errorf("%q: NeedsHeaders() = %v, want %v (%v)", src, p != nil && p.NeedsHeaders(), want, err)
		}
	}
	p, err := Default(context.Background())
	if err != nil || p.NeedsObject() || p.NeedsHeaders() || p.memo == nil {
		t.Fatalf("the built-in policy never reads input.object and is memoised: %v", err)
	}
	// Memoised answers follow the input: each combination is decided on its own, including the
	// request fields and tags a policy names.
	limits, err := Compile(context.Background(), map[string]string{"p.rego": `package weir
allow if {
	input.request.size <= 10
	input.bucket.tags.team == input.principal.groups[0]
	not input.request.headers["x-deny"]
}`})
	if err != nil || limits.memo == nil {
		t.Fatalf("a policy of named paths is memoised: %v", err)
	}
	for i := 0; i < 2; i++ {
		for _, c := range []struct {
			size  int64
			team  string
			deny  bool
			allow bool
		}{{10, "g", false, true}, {11, "g", false, false}, {10, "h", false, false}, {10, "g", true, false}} {
			in := sampleInput("ANN", false, "ANN")
			in.Request.Size, in.Bucket.Tags = c.size, map[string]string{"team": c.team}
			in.Request.Headers = map[string]string{}
			if c.deny {
				in.Request.Headers["x-deny"] = "1"
			}
			d, err := limits.Decide(context.Background(), in)
			if err != nil || d.Allow != c.allow {
				t.Fatalf("round %d, %+v: %+v %v", i, c, d, err)
			}
		}
	}
	// A key rule costs no object read, and its memoised answers follow the key.
	byKey, err := Compile(context.Background(), map[string]string{"p.rego": "package weir\nallow if not endswith(input.object.key, \".exe\")"})
	if err != nil || byKey.NeedsObject() || byKey.memo == nil {
		t.Fatalf("a key rule reads no object and is memoised: %v", err)
	}
	for i := 0; i < 2; i++ {
		for key, allow := range map[string]bool{"setup.exe": false, "notes.txt": true, "a.exe": false, "b": true} {
			in := sampleInput("ANN", false, "ANN")
			in.Object.Key = key
			d, err := byKey.Decide(context.Background(), in)
			if err != nil || d.Allow != allow {
				t.Fatalf("round %d, key %q: %+v %v", i, key, d, err)
			}
		}
	}
	// The operation beside the action is in the memo's key too.
	byOp, err := Compile(context.Background(), map[string]string{"p.rego": "package weir\nallow if input.operation != \"UploadPart\""})
	if err != nil || byOp.memo == nil {
		t.Fatalf("an operation rule is memoised: %v", err)
	}
	for i := 0; i < 2; i++ {
		for op, allow := range map[string]bool{"UploadPart": false, "PutObject": true, "CompleteMultipartUpload": true} {
			in := sampleInput("ANN", false, "ANN")
			in.Operation = op
			d, err := byOp.Decide(context.Background(), in)
			if err != nil || d.Allow != allow {
				t.Fatalf("round %d, operation %s: %+v %v", i, op, d, err)
			}
		}
	}
	for i := 0; i < 3; i++ {
		for _, c := range []struct {
			who, owner string
			allow      bool
		}{{"ALICE", "ALICE", true}, {"BOB", "ALICE", false}, {"BOB", "BOB", true}} {
			d, err := p.Decide(context.Background(), sampleInput(c.who, false, c.owner))
			if err != nil || d.Allow != c.allow {
				t.Fatalf("round %d, %s on %s's bucket: %+v %v", i, c.who, c.owner, d, err)
			}
		}
	}
}
