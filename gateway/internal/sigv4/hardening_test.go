package sigv4

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
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

// minio-go ends the trailer line with a bare LF and sends CRLF before the trailer signature.
func TestMinioTrailerFraming(t *testing.T) {
	key := deriveKey(testSK, "20261123", "us-east-1", "s3")
	seed := strings.Repeat("ab", 32)
	data := bytes.Repeat([]byte("minio"), 3000)
	enc := encodeChunked(data, 8192, key, "20261123T120000Z", "20261123/us-east-1/s3/aws4_request", seed, [][2]string{{"x-amz-checksum-crc32", "AAAAAA=="}})
	minio := bytes.Replace(enc, []byte("AAAAAA==\r\nx-amz-trailer-signature"), []byte("AAAAAA==\n\r\nx-amz-trailer-signature"), 1)
	if bytes.Equal(minio, enc) {
		t.Fatal("the test did not rewrite the framing")
	}
	a := &Auth{PayloadMode: StreamingSignedTrailer, key: key, amzDate: "20261123T120000Z", scope: "20261123/us-east-1/s3/aws4_request", signature: seed}
	p, err := a.Body(streamingRequest(minio, len(data)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(p)
	if err != nil || !bytes.Equal(got, data) || p.Trailers().Get("x-amz-checksum-crc32") != "AAAAAA==" {
		t.Fatalf("minio framing: %d bytes, %v, trailers %v", len(got), err, p.Trailers())
	}
	// Without the signature after the blank line, the trailer is unsigned: refused.
	cut := minio[:bytes.Index(minio, []byte("x-amz-trailer-signature"))]
	p, _ = a.Body(streamingRequest(cut, len(data)))
	if _, err := io.ReadAll(p); !errors.Is(err, ErrSignatureDoesNotMatch) {
		t.Fatalf("trailer without signature: %v", err)
	}
}

// A signed chunk that declares 1,000,000 bytes and stalls after 1,000 makes the decoder hold what
// arrived, not what was announced.
func TestStalledChunkAllocatesWhatArrived(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	key := deriveKey(testSK, "20261123", "us-east-1", "s3")
	a := &Auth{PayloadMode: StreamingSigned, key: key, amzDate: "20261123T120000Z", scope: "20261123/us-east-1/s3/aws4_request", signature: strings.Repeat("ab", 32)}
	r := streamingRequest(nil, 1000000)
	r.Body = pr
	p, err := a.Body(r)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	done := make(chan error, 1)
	go func() { _, err := io.ReadAll(p); done <- err }()
	fmt.Fprintf(pw, "%x;chunk-signature=%s\r\n", 1000000, strings.Repeat("0", 64))
	pw.Write(make([]byte, 1000))
	time.Sleep(200 * time.Millisecond) // the reader is now waiting for the rest
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 400_000 {
		t.Fatalf("a stalled chunk with 1,000 bytes received allocated %d bytes", grew)
	}
	pw.CloseWithError(io.ErrUnexpectedEOF)
	if err := <-done; !errors.Is(err, ErrIncompleteBody) {
		t.Fatalf("cut body: %v", err)
	}
}
