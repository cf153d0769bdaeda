package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
)

// TestPoliciesSignedBundle: `--policies bundle.tar.gz --policies-bundle-key pub.pem` serves a
// signed OPA bundle; a tampered one stops weir at start with the reason.
func TestPoliciesSignedBundle(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	private := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(dir, "pub.pem")
	os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)

	src := "package weir\ndefault allow := false\nallow if input.principal.root\nreason := \"this gateway serves root only (signed bundle)\" if not allow\n"
	writeBundle := func(path, rego string) {
		m, err := ast.ParseModuleWithOpts("/policy.rego", src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatal(err)
		}
		b := bundle.Bundle{Data: map[string]any{}, Modules: []bundle.ModuleFile{{Path: "/policy.rego", URL: "/policy.rego", Parsed: m, Raw: []byte(src)}}}
		b.Manifest.Init()
		if err := b.GenerateSignature(bundle.NewSigningConfig(private, "ES256", ""), "ops", true); err != nil {
			t.Fatal(err)
		}
		b.Modules[0].Raw = []byte(rego) // the file shipped; equal to src unless tampered
		var buf bytes.Buffer
		if err := bundle.NewWriter(&buf).UseModulePath(true).Write(b); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(path, buf.Bytes(), 0o644)
	}
	good, bad := filepath.Join(dir, "good.tar.gz"), filepath.Join(dir, "bad.tar.gz")
	writeBundle(good, src)
	writeBundle(bad, strings.Replace(src, "default allow := false", "default allow := true", 1))

	users := filepath.Join(dir, "users.json")
	os.WriteFile(users, []byte(`[{"name":"bob","access_key":"BOBKEY","secret_key":"bob-secret-123"}]`), 0o600)
	p := startWeir(t, filepath.Join(dir, "data"), append(testEnv(), "WEIR_USERS="+users, "WEIR_POLICIES="+good,
		"WEIR_POLICIES_BUNDLE_KEY="+pubFile, "WEIR_POLICIES_BUNDLE_KEY_ALG=ES256")...)
	q := *p
	q.accessKey, q.secretKey = "BOBKEY", "bob-secret-123"
	_, err = q.client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("bobs")})
	if err == nil || !strings.Contains(err.Error(), "this gateway serves root only (signed bundle)") {
		t.Fatalf("bob under the signed bundle: %v", err)
	}
	if _, err := p.client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("roots")}); err != nil {
		t.Fatalf("root under the signed bundle: %v", err)
	}

	var stderr bytes.Buffer
	err = run(context.Background(), []string{"--addr", "127.0.0.1:0", "--data", filepath.Join(dir, "data2"),
		"--policies", bad, "--policies-bundle-key", pubFile, "--policies-bundle-key-alg", "ES256"}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "digest mismatch") {
		t.Fatalf("a tampered bundle must stop weir at start: %v", err)
	}
}
