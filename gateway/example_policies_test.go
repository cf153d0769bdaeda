package gateway_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Each example policy of examples/policies, run by the real server against a real S3 client.

func examplePolicy(t testing.TB, name string) map[string]string {
	t.Helper()
	src, err := os.ReadFile("../examples/policies/" + name + "/policy.rego")
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{name + ".rego": string(src)}
}

func tag(t *testing.T, c *s3.Client, bucket, k, v string) {
	t.Helper()
	if _, err := c.PutBucketTagging(context.Background(), &s3.PutBucketTaggingInput{Bucket: aws.String(bucket),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String(k), Value: aws.String(v)}}}}); err != nil {
		t.Fatal(err)
	}
}

// expectDenied: a 403 AccessDenied whose message is the policy's or the plugin's reason, as
// written (the docs quote it so).
func expectDenied(t *testing.T, err error, reason string) {
	t.Helper()
	if httpStatus(err) != http.StatusForbidden || apiCode(err) != "AccessDenied" || apiMessage(err) != reason {
		t.Fatalf("want 403 AccessDenied %q, got %v", reason, err)
	}
}

func TestExampleTenantIsolation(t *testing.T) {
	ts := startServer(t, serverOptions{Policy: examplePolicy(t, "tenant-isolation")})
	ctx := context.Background()
	root, alice, bob := ts.root(), ts.client3(userAK, userSK), ts.client3(bobAK, bobSK) // alice: team-a, bob: team-b
	mustCreateBucket(t, alice, "team-a-logs")
	mustPut(t, alice, "team-a-logs", "k", []byte("a"))
	_, err := bob.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("team-a-logs"), Key: aws.String("k"), Body: strings.NewReader("b")})
	expectDenied(t, err, "bucket team-a-logs belongs to a tenant bob is not in")
	mustCreateBucket(t, root, "shared")
	mustPut(t, root, "shared", "doc", []byte("for everyone"))
	if got := mustGet(t, bob, "shared", "doc"); string(got) != "for everyone" {
		t.Fatalf("shared read: %q", got)
	}
	_, err = alice.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("shared"), Key: aws.String("x"), Body: strings.NewReader("x")})
	expectDenied(t, err, "the shared bucket is read-only")
	// ListBuckets shows what each may list: their tenant's buckets, whoever created them, and shared.
	mustCreateBucket(t, root, "team-b-data")
	for _, tc := range []struct {
		name string
		c    *s3.Client
		want string
	}{{"alice", alice, "shared team-a-logs"}, {"bob", bob, "shared team-b-data"}, {"root", root, "shared team-a-logs team-b-data"}} {
		out, err := tc.c.ListBuckets(ctx, &s3.ListBucketsInput{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, b := range out.Buckets {
			names = append(names, aws.ToString(b.Name))
		}
		if got := strings.Join(names, " "); got != tc.want {
			t.Errorf("%s lists %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestExampleStrategyByTag(t *testing.T) {
	ts := startServer(t, serverOptions{Policy: examplePolicy(t, "strategy-by-tag")})
	c := ts.root()
	mustCreateBucket(t, c, "tagged")
	tag(t, c, "tagged", "concurrency", "etag")
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("tagged"), Key: aws.String("k"), Body: strings.NewReader("x")})
	if httpStatus(err) != http.StatusPreconditionRequired {
		t.Fatalf("unconditional write on a bucket tagged concurrency=etag: %v", err)
	}
	out, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("tagged"), Key: aws.String("k"), Body: strings.NewReader("x"), IfNoneMatch: aws.String("*")})
	if err != nil {
		t.Fatal(err)
	}
	if h := rawHeaders(out.ResultMetadata); h.Get("x-weir-concurrency") != "etag" || h.Get("x-weir-decided-by") != "policy" {
		t.Fatalf("headers: %v", h)
	}
}

func TestExampleCriticalNeverLWW(t *testing.T) {
	ts := startServer(t, serverOptions{Policy: examplePolicy(t, "critical-never-lww")})
	c := ts.root()
	mustCreateBucket(t, c, "payments")
	mustPut(t, c, "payments", "k", []byte("v1")) // not critical yet
	tag(t, c, "payments", "critical", "true")
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("payments"), Key: aws.String("k"), Body: strings.NewReader("v2")})
	if httpStatus(err) != http.StatusPreconditionRequired || apiCode(err) != "PreconditionRequired" {
		t.Fatalf("last-writer-wins write on a critical bucket: %v", err)
	}
	head, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("payments"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("payments"), Key: aws.String("k"), Body: strings.NewReader("v2"), IfMatch: head.ETag}); err != nil {
		t.Fatalf("conditional write: %v", err)
	}
}

func TestExampleExclusiveReads(t *testing.T) {
	ts := startServer(t, serverOptions{Policy: examplePolicy(t, "exclusive-reads")})
	c := ts.root()
	mustCreateBucket(t, c, "vault")
	mustPut(t, c, "vault", "k", []byte("secret"))
	tag(t, c, "vault", "exclusive", "true")
	expectError(t, ts, ts.signed(t, http.MethodGet, "/vault/k", nil, nil, "", time.Now()), 412, "LeaseNotPresentWithBlobOperation")
	resp, _ := ts.lease(t, "/vault/k", map[string]string{"x-weir-lease-action": "acquire", "x-weir-lease-duration": "15"})
	leaseID := resp.Header.Get("x-weir-lease-id")
	resp, _, body := ts.do(t, ts.signed(t, http.MethodGet, "/vault/k", nil, map[string]string{"x-weir-lease-id": leaseID}, "", time.Now()))
	if resp.StatusCode != 200 || string(body) != "secret" {
		t.Fatalf("read with the lease: %d %q", resp.StatusCode, body)
	}
	// A copy reads its source: the same rule holds, with the source's lease in its own header.
	mustCreateBucket(t, c, "open")
	expectError(t, ts, ts.signed(t, http.MethodPut, "/open/copy", nil, map[string]string{"x-amz-copy-source": "/vault/k"}, "", time.Now()), 412, "LeaseIdMissing")
	resp, _, body = ts.do(t, ts.signed(t, http.MethodPut, "/open/copy", nil, map[string]string{"x-amz-copy-source": "/vault/k", "x-weir-source-lease-id": leaseID}, "", time.Now()))
	if resp.StatusCode != 200 {
		t.Fatalf("copy with the source's lease: %d %s", resp.StatusCode, body)
	}
}

func TestExampleUploadLimits(t *testing.T) {
	ts := startServer(t, serverOptions{Policy: examplePolicy(t, "upload-limits"), MinPartSize: 256 << 10})
	c := ts.root()
	ctx := context.Background()
	mustCreateBucket(t, c, "uploads")
	mustPut(t, c, "uploads", "small", []byte("fine"))
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("uploads"), Key: aws.String("big"), Body: bytes.NewReader(make([]byte, 2<<20))})
	expectDenied(t, err, "objects are limited to 1 MiB")
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("uploads"), Key: aws.String("setup.exe"), Body: strings.NewReader("MZ"), ContentType: aws.String("application/x-msdownload")})
	expectDenied(t, err, "executables may not be stored here")
	// Both rules at once: a 403 with one reason (two reason rules used to conflict: 500).
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("uploads"), Key: aws.String("big.exe"), Body: bytes.NewReader(make([]byte, 2<<20)), ContentType: aws.String("application/x-msdownload")})
	expectDenied(t, err, "objects are limited to 1 MiB")

	// In parts: a part over the limit is refused at once; parts within it pass, and the object
	// they would make is refused at CompleteMultipartUpload, which sees its whole size.
	upload := func(key string, partSizes ...int) error {
		t.Helper()
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("uploads"), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("CreateMultipartUpload %s: %v", key, err)
		}
		var done []types.CompletedPart
		for i, n := range partSizes {
			out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("uploads"), Key: aws.String(key), UploadId: up.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(make([]byte, n))})
			if err != nil {
				return err
			}
			done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
		}
		_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("uploads"), Key: aws.String(key), UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
		return err
	}
	expectDenied(t, upload("one-big-part", 2<<20), "objects are limited to 1 MiB")
	expectDenied(t, upload("parts", 600<<10, 600<<10), "objects are limited to 1 MiB")
	if err := upload("small-parts", 300<<10, 300<<10); err != nil {
		t.Fatalf("an object of two 300 KiB parts: %v", err)
	}
	l, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("uploads")})
	if err != nil || len(l.Contents) != 2 {
		t.Fatalf("refused uploads left objects: %+v %v", l.Contents, err)
	}
}
