package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// presignRaw presigns method on path (with its query) as root, signing host only, as a URL
// handed to a third party would be.
func (ts *testServer) presignRaw(t testing.TB, method, path string) string {
	t.Helper()
	r, err := http.NewRequest(method, ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := r.URL.Query()
	q.Set("X-Amz-Expires", "300")
	r.URL.RawQuery = q.Encode()
	u, _, err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).PresignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: rootAK, SecretAccessKey: rootSK}, r, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Finding 1: an x-amz-* or x-weir-* header that the signature does not cover is refused, in a
// presigned URL (a copy source or a lease added by whoever holds the URL) and in header auth.
func TestUnsignedHeadersRefused(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.root()
	mustCreateBucket(t, c, "bkt")
	mustPut(t, c, "bkt", "secret.txt", []byte("the secret"))
	ctx := context.Background()

	ps, err := s3.NewPresignClient(c).PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("upload.bin")})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, ps.URL, nil)
	req.Header.Set("x-amz-copy-source", "/bkt/secret.txt")
	e := expectError(t, ts, req, 403, "AccessDenied")
	if !strings.Contains(e.Message, "not signed") || !strings.Contains(e.Message, "x-amz-copy-source") {
		t.Fatalf("message %q does not name the unsigned header", e.Message)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("upload.bin")}); httpStatus(err) != 404 {
		t.Fatalf("upload.bin exists after the refused copy: %v", err)
	}

	req, _ = http.NewRequest(http.MethodPut, ts.presignRaw(t, http.MethodPut, "/bkt/secret.txt?lease"), nil)
	req.Header.Set("x-weir-lease-action", "acquire")
	req.Header.Set("x-weir-lease-duration", "-1")
	expectError(t, ts, req, 403, "AccessDenied")
	if info, err := ts.Engine.StatObject("bkt", "secret.txt"); err != nil || info.Lease.State != "available" {
		t.Fatalf("lease state after the refused acquire: %+v %v", info.Lease, err)
	}

	// The presigned URL as issued still works.
	req, _ = http.NewRequest(http.MethodPut, ps.URL, strings.NewReader("uploaded"))
	if resp, _, data := ts.do(t, req); resp.StatusCode != 200 {
		t.Fatalf("presigned PUT as signed: %d %s", resp.StatusCode, data)
	}

	// Header auth: a header added after signing.
	for _, h := range [][2]string{{"x-amz-copy-source", "/bkt/secret.txt"}, {"x-amz-meta-owner", "mallory"}, {"x-weir-if-generation-match", "0"}} {
		req = ts.signed(t, http.MethodPut, "/bkt/upload.bin", []byte("x"), nil, "", time.Now())
		req.Header.Set(h[0], h[1])
		expectError(t, ts, req, 403, "AccessDenied")
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("upload.bin")})
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, out.Body); string(got) != "uploaded" || out.Metadata["owner"] != "" {
		t.Fatalf("upload.bin is %q %v after refused requests", got, out.Metadata)
	}
}

// Finding 4: the credential scope must name weir's region; a 60 KB one is refused with the region
// expected, not hashed and cached.
func TestCredentialRegionMustMatch(t *testing.T) {
	ts := startServer(t, serverOptions{})
	for _, region := range []string{"eu-west-1", strings.Repeat("r", 60000)} {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/", nil)
		req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: rootAK, SecretAccessKey: rootSK}, req, "UNSIGNED-PAYLOAD", "s3", region, time.Now()); err != nil {
			t.Fatal(err)
		}
		e := expectError(t, ts, req, 400, "AuthorizationHeaderMalformed")
		if !strings.Contains(e.Message, `expecting "us-east-1"`) || len(e.Message) > 300 {
			t.Fatalf("message %.300q does not name the expected region briefly", e.Message)
		}
	}
}
