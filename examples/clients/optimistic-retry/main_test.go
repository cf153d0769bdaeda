package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/weirproject/weir/gateway/gatewaytest"
)

// TestOptimisticRetry runs the program against a real weir: 16 concurrent If-Match increments
// end at 16 (none lost) and some of them did lose a race and retry; a second run counts on from
// 16; and the bucket really is etag, so the retry loop is what kept the writes safe.
func TestOptimisticRetry(t *testing.T) {
	endpoint := gatewaytest.Start(t, gatewaytest.Options{}).URL
	args := []string{"-endpoint", endpoint, "-access-key", gatewaytest.RootAccessKey, "-secret-key", gatewaytest.RootSecretKey, "-n", "16"}
	var out bytes.Buffer
	if err := run(context.Background(), args, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	t.Log(out.String())
	if !strings.Contains(out.String(), "x-weir-concurrency: etag, x-weir-decided-by: bucket") {
		t.Errorf("the create did not report the etag strategy:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "went from 0 to 16;") {
		t.Errorf("want 0 → 16:\n%s", out.String())
	}
	if strings.Contains(out.String(), "; 0 lost races") {
		t.Logf("no client lost a race this time (the scheduler serialised them); the counter is still exact")
	}

	c := newClient(endpoint, gatewaytest.RootAccessKey, gatewaytest.RootSecretKey, http.DefaultClient)
	ctx := context.Background()
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("counters"), Key: aws.String("n")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if string(body) != "16" {
		t.Fatalf("counter is %q, want 16", body)
	}
	// The etag strategy refuses an unconditional write: the condition is not optional here.
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("counters"), Key: aws.String("n"), Body: strings.NewReader("0")})
	if httpStatus(err) != http.StatusPreconditionRequired || errorCode(err) != "PreconditionRequired" {
		t.Fatalf("unconditional PUT on the etag bucket: %v (want 428 PreconditionRequired)", err)
	}

	// Running it again counts on from the stored value.
	out.Reset()
	if err := run(context.Background(), append(args[:len(args)-1], "4"), &out); err != nil {
		t.Fatalf("second run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "went from 16 to 20;") {
		t.Fatalf("second run, want 16 → 20:\n%s", out.String())
	}
}
