package gateway_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestAbortedResponseCounted: a client that hangs up in the middle of a download leaves a
// response the server could not finish. An operator must see it in /metrics, whichever way the
// server noticed (a canceled context, or a failed write after the body began, which aborts the
// connection with a panic that skipped the bookkeeping before).
func TestAbortedResponseCounted(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.root()
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("aborts")}); err != nil {
		t.Fatal(err)
	}
	// Large enough that the server is still writing when the client hangs up: more than the
	// socket buffers on both sides hold.
	body := bytes.Repeat([]byte("weir"), 64<<20/4)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("aborts"), Key: aws.String("big"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	before := ts.metric(t, `weir_requests_total{op="GetObject",status="200"}`)

	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("aborts"), Key: aws.String("big")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(got.Body, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	got.Body.Close() // mid-body: the transport drops the connection

	deadline := time.Now().Add(30 * time.Second)
	for ts.metric(t, `weir_responses_aborted_total{op="GetObject"}`) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the aborted GET was not counted: weir_responses_aborted_total{op=\"GetObject\"} = %v",
				ts.metric(t, `weir_responses_aborted_total{op="GetObject"}`))
		}
		time.Sleep(20 * time.Millisecond)
	}
	after := ts.metric(t, `weir_requests_total{op="GetObject",status="200"}`)
	after499 := ts.metric(t, `weir_requests_total{op="GetObject",status="499"}`)
	if max(after, 0)+max(after499, 0) != max(before, 0)+1 {
		t.Errorf("weir_requests_total for GetObject went from %v (200) to %v (200) + %v (499); want one more request", before, after, after499)
	}
}
