package sigv4

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// An x-amz-* or x-weir-* header added after signing (header auth) or to a presigned URL is
// refused: it would act with the signer's authority.
func TestUnsignedHeadersRefused(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	v := testVerifier(now)
	for _, name := range []string{"X-Amz-Copy-Source", "X-Weir-Lease-Action", "x-amz-meta-added"} {
		r := signed(t, http.MethodPut, "http://h/b/k", []byte("x"), nil, now)
		r.Header.Set(name, "/b/secret")
		if _, err := v.Verify(r); !errors.Is(err, ErrHeadersNotSigned) || !strings.Contains(err.Error(), strings.ToLower(name)) {
			t.Errorf("header auth with unsigned %s: %v", name, err)
		}

		pr, _ := http.NewRequest(http.MethodPut, "http://h/b/k?X-Amz-Expires=60", nil)
		u, _, err := s3Signer().PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK}, pr, unsignedPayload, "s3", "us-east-1", now)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPut, u, nil)
		if _, err := v.Verify(req); err != nil {
			t.Fatalf("presigned PUT as signed: %v", err)
		}
		req.Header.Set(name, "/b/secret")
		if _, err := v.Verify(req); !errors.Is(err, ErrHeadersNotSigned) {
			t.Errorf("presigned with unsigned %s: %v", name, err)
		}
	}
	// Signed x-amz-* headers and unsigned ordinary ones (User-Agent) pass.
	r := signed(t, http.MethodPut, "http://h/b/k", []byte("x"), http.Header{"X-Amz-Meta-A": {"1"}, "X-Weir-Lease-Id": {"abc"}}, now)
	r.Header.Set("User-Agent", "added later")
	if _, err := v.Verify(r); err != nil {
		t.Fatal(err)
	}
}

// The credential scope must name the verifier's region; a huge one is refused before any key is
// derived, and its echo in the message is cut short.
func TestRegionMustMatch(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	v := testVerifier(now)
	v.Region = "eu-central-1"
	for _, region := range []string{"us-east-1", strings.Repeat("r", 60000)} {
		r, _ := http.NewRequest(http.MethodGet, "http://h/b/k", nil)
		r.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
		if err := s3Signer().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK}, r, unsignedPayload, "s3", region, now); err != nil {
			t.Fatal(err)
		}
		_, err := v.Verify(r)
		if !errors.Is(err, ErrAuthorizationMalformed) || !strings.Contains(err.Error(), `expecting "eu-central-1"`) || len(err.Error()) > 300 {
			t.Errorf("region %.20s...: %.300v", region, err)
		}
	}
	if n := v.CachedKeys(); n != 0 {
		t.Fatalf("%d keys cached for refused regions", n)
	}
	// GetBucketLocation may be signed for us-east-1, as S3 allows.
	r, _ := http.NewRequest(http.MethodGet, "http://h/b?location", nil)
	r.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
	_ = s3Signer().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK}, r, unsignedPayload, "s3", "us-east-1", now)
	if _, err := v.Verify(r); err != nil {
		t.Fatalf("GetBucketLocation signed for us-east-1: %v", err)
	}
}

// A signature that fails does not leave its key in the cache; one that verifies does.
func TestKeyCachedOnlyAfterVerification(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	v := &Verifier{Secret: func(string) (string, bool) { return "wrong secret", true }, Now: func() time.Time { return now }}
	for i := 0; i < 10; i++ {
		if _, err := v.Verify(signed(t, http.MethodGet, "http://h/b/k", nil, nil, now)); !errors.Is(err, ErrSignatureDoesNotMatch) {
			t.Fatal(err)
		}
		var se *SignatureError
		if _, err := v.Verify(signed(t, http.MethodGet, "http://h/b/k", nil, nil, now)); !errors.As(err, &se) || se.CanonicalRequest == "" || strings.Contains(se.StringToSign, testSK) {
			t.Fatalf("no SignatureError with the canonical request: %v", err)
		}
	}
	if n := v.CachedKeys(); n != 0 {
		t.Fatalf("%d keys cached by failed signatures", n)
	}
	good := testVerifier(now)
	if _, err := good.Verify(signed(t, http.MethodGet, "http://h/b/k", nil, nil, now)); err != nil {
		t.Fatal(err)
	}
	if n := good.CachedKeys(); n != 1 {
		t.Fatalf("%d keys cached after a verified request, want 1", n)
	}
}
