package gateway_test

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/weirproject/weir/internal/fakeclock"
)

// lease sends PUT ?lease with the given headers and returns the response and its S3 error.
func (ts *testServer) lease(t *testing.T, path string, hdr map[string]string) (*http.Response, s3ErrorBody) {
	t.Helper()
	resp, e, _ := ts.do(t, ts.signed(t, http.MethodPut, path+"?lease", nil, hdr, "", time.Now()))
	return resp, e
}

func (ts *testServer) putWithLease(t *testing.T, path, leaseID string, body []byte) (*http.Response, s3ErrorBody) {
	t.Helper()
	hdr := map[string]string{}
	if leaseID != "" {
		hdr["x-weir-lease-id"] = leaseID
	}
	resp, e, _ := ts.do(t, ts.signed(t, http.MethodPut, path, body, hdr, "", time.Now()))
	return resp, e
}

func TestLeaseAPI(t *testing.T) {
	clock := fakeclock.New(time.Now())
	ts := startServer(t, serverOptions{Clock: clock.Now})
	c := ts.root()
	mustCreateBucket(t, c, "leases")
	mustPut(t, c, "leases", "doc", []byte("v1"))

	resp, e := ts.lease(t, "/leases/doc", map[string]string{"x-weir-lease-action": "acquire", "x-weir-lease-duration": "15"})
	id := resp.Header.Get("x-weir-lease-id")
	if resp.StatusCode != http.StatusCreated || id == "" {
		t.Fatalf("acquire: %d %s", resp.StatusCode, e.Code)
	}
	head, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("leases"), Key: aws.String("doc")})
	if err != nil {
		t.Fatal(err)
	}
	raw := rawHeaders(head.ResultMetadata)
	if raw.Get("x-weir-lease-state") != "leased" || raw.Get("x-weir-lease-status") != "locked" || raw.Get("x-weir-lease-duration") != "fixed" {
		t.Fatalf("HEAD lease headers: %v", raw)
	}
	if resp, e := ts.putWithLease(t, "/leases/doc", "", []byte("v2")); resp.StatusCode != 412 || e.Code != "LeaseIdMissing" {
		t.Fatalf("write without the lease: %d %s", resp.StatusCode, e.Code)
	}
	other := "99999999-9999-4999-8999-999999999999"
	if resp, e := ts.putWithLease(t, "/leases/doc", other, []byte("v2")); resp.StatusCode != 412 || e.Code != "LeaseIdMismatchWithBlobOperation" {
		t.Fatalf("write with another lease: %d %s", resp.StatusCode, e.Code)
	}
	if resp, _ := ts.putWithLease(t, "/leases/doc", id, []byte("v2")); resp.StatusCode != 200 {
		t.Fatalf("write with the lease: %d", resp.StatusCode)
	}
	if resp, e := ts.lease(t, "/leases/doc", map[string]string{"x-weir-lease-action": "acquire", "x-weir-lease-duration": "15"}); resp.StatusCode != 409 || e.Code != "LeaseAlreadyPresent" {
		t.Fatalf("second acquire: %d %s", resp.StatusCode, e.Code)
	}
	if resp, _ := ts.lease(t, "/leases/doc", map[string]string{"x-weir-lease-action": "renew", "x-weir-lease-id": id}); resp.StatusCode != 200 {
		t.Fatalf("renew: %d", resp.StatusCode)
	}
	newID := "44444444-4444-4444-8444-444444444444"
	if resp, _ := ts.lease(t, "/leases/doc", map[string]string{"x-weir-lease-action": "change", "x-weir-lease-id": id, "x-weir-proposed-lease-id": newID}); resp.StatusCode != 200 || resp.Header.Get("x-weir-lease-id") != newID {
		t.Fatalf("change: %d %s", resp.StatusCode, resp.Header.Get("x-weir-lease-id"))
	}
	resp, _ = ts.lease(t, "/leases/doc", map[string]string{"x-weir-lease-action": "break", "x-weir-lease-break-period": "10"})
	if resp.StatusCode != 202 || resp.Header.Get("x-weir-lease-time") != "10" {
		t.Fatalf("break: %d lease-time %q", resp.StatusCode, resp.Header.Get("x-weir-lease-time"))
	}
	if resp, e := ts.lease(t, "/leases/doc", map[string]string{"x-weir-lease-action": "renew", "x-weir-lease-id": newID}); resp.StatusCode != 409 || e.Code != "LeaseIsBrokenAndCannotBeRenewed" {
		t.Fatalf("renew while breaking: %d %s", resp.StatusCode, e.Code)
	}
	if resp, _ := ts.lease(t, "/leases/doc", map[string]string{"x-weir-lease-action": "release", "x-weir-lease-id": newID}); resp.StatusCode != 200 {
		t.Fatalf("release: %d", resp.StatusCode)
	}
	if resp, e := ts.lease(t, "/leases/nope", map[string]string{"x-weir-lease-action": "acquire", "x-weir-lease-duration": "15"}); resp.StatusCode != 404 || e.Code != "NoSuchKey" {
		t.Fatalf("lease on a missing object: %d %s", resp.StatusCode, e.Code)
	}
	if resp, e := ts.lease(t, "/leases/doc", map[string]string{"x-weir-lease-action": "acquire", "x-weir-lease-duration": "5"}); resp.StatusCode != 400 || e.Code != "InvalidArgument" {
		t.Fatalf("bad duration: %d %s", resp.StatusCode, e.Code)
	}

	// A bucket lease guards DeleteBucket.
	mustCreateBucket(t, c, "leased-bucket")
	resp, _ = ts.lease(t, "/leased-bucket", map[string]string{"x-weir-lease-action": "acquire", "x-weir-lease-duration": "-1"})
	bid := resp.Header.Get("x-weir-lease-id")
	if resp.StatusCode != 201 {
		t.Fatalf("bucket acquire: %d", resp.StatusCode)
	}
	expectError(t, ts, ts.signed(t, http.MethodDelete, "/leased-bucket", nil, nil, "", time.Now()), 412, "LeaseIdMissing")
	expectError(t, ts, ts.signed(t, http.MethodDelete, "/leased-bucket", nil, map[string]string{"x-weir-lease-id": "7b4e9c5a-4c1f-4a59-9b7e-2f6d1c3a8e90"}, "", time.Now()), 412, "LeaseIdMismatchWithContainerOperation")
	mustCreateBucket(t, c, "unleased-bucket")
	expectError(t, ts, ts.signed(t, http.MethodDelete, "/unleased-bucket", nil, map[string]string{"x-weir-lease-id": bid}, "", time.Now()), 412, "LeaseNotPresentWithContainerOperation")
	if resp, _, _ := ts.do(t, ts.signed(t, http.MethodDelete, "/leased-bucket", nil, map[string]string{"x-weir-lease-id": bid}, "", time.Now())); resp.StatusCode != 204 {
		t.Fatalf("delete leased bucket with its lease: %d", resp.StatusCode)
	}
	// Operators see the refusals in /metrics: by S3 code, and lease operations by action.
	if n := ts.metric(t, `weir_precondition_failures_total{code="LeaseIdMismatchWithContainerOperation"}`); n != 1 {
		t.Errorf("precondition failures counted for the wrong bucket lease id: %v", n)
	}
	if n := ts.metric(t, `weir_precondition_failures_total{code="LeaseIdMissing"}`); n < 2 {
		t.Errorf("precondition failures counted for writes without the lease id: %v", n)
	}
	if n := ts.metric(t, `weir_lease_failures_total{action="acquire"}`); n < 1 {
		t.Errorf("refused lease acquisitions counted: %v", n)
	}
}

// TestPessimisticCounter: 16 clients contend for one object's lease under the lease strategy
// and increment it only while holding the lease: no update is lost. A holder that stops renewing
// loses the lease at expiry (fake clock), and a break with a period hands it over.
func TestPessimisticCounter(t *testing.T) {
	clock := fakeclock.New(time.Now())
	ts := startServer(t, serverOptions{Clock: clock.Now})
	c := ts.root()
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("locked")}, withHeader("x-weir-concurrency", "lease")); err != nil {
		t.Fatal(err)
	}
	mustPut(t, c, "locked", "n", []byte("0")) // creating needs no lease
	if resp, e := ts.putWithLease(t, "/locked/n", "", []byte("9")); resp.StatusCode != 412 || e.Code != "LeaseNotPresentWithBlobOperation" {
		t.Fatalf("changing without a lease under the lease strategy: %d %s", resp.StatusCode, e.Code)
	}
	const clients, each = 16, 3
	var increments, busy atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done := 0; done < each; {
				resp, e := ts.lease(t, "/locked/n", map[string]string{"x-weir-lease-action": "acquire", "x-weir-lease-duration": "60"})
				if resp.StatusCode == 409 {
					busy.Add(1)
					time.Sleep(time.Millisecond)
					continue
				}
				if resp.StatusCode != 201 {
					t.Errorf("acquire: %d %s", resp.StatusCode, e.Code)
					return
				}
				id := resp.Header.Get("x-weir-lease-id")
				n, _ := strconv.Atoi(string(mustGet(t, c, "locked", "n")))
				if resp, e := ts.putWithLease(t, "/locked/n", id, []byte(strconv.Itoa(n+1))); resp.StatusCode != 200 {
					t.Errorf("write while holding the lease: %d %s", resp.StatusCode, e.Code)
					return
				}
				increments.Add(1)
				done++
				if resp, e := ts.lease(t, "/locked/n", map[string]string{"x-weir-lease-action": "release", "x-weir-lease-id": id}); resp.StatusCode != 200 {
					t.Errorf("release: %d %s", resp.StatusCode, e.Code)
					return
				}
			}
		}()
	}
	wg.Wait()
	final, _ := strconv.Atoi(string(mustGet(t, c, "locked", "n")))
	t.Logf("%d increments under the lease, %d acquires refused while another held it", increments.Load(), busy.Load())
	if final != clients*each || int64(final) != increments.Load() {
		t.Fatalf("final value %d after %d increments: an update was lost", final, increments.Load())
	}
	if busy.Load() == 0 {
		t.Fatal("no acquire was ever refused: the test did not exercise contention")
	}

	// A holder that stops renewing loses the lease when it expires.
	resp, _ := ts.lease(t, "/locked/n", map[string]string{"x-weir-lease-action": "acquire", "x-weir-lease-duration": "15"})
	stale := resp.Header.Get("x-weir-lease-id")
	if resp, _ := ts.lease(t, "/locked/n", map[string]string{"x-weir-lease-action": "acquire", "x-weir-lease-duration": "15"}); resp.StatusCode != 409 {
		t.Fatalf("acquire while held: %d", resp.StatusCode)
	}
	clock.Advance(16 * time.Second)
	resp, _ = ts.lease(t, "/locked/n", map[string]string{"x-weir-lease-action": "acquire", "x-weir-lease-duration": "-1"})
	fresh := resp.Header.Get("x-weir-lease-id")
	if resp.StatusCode != 201 {
		t.Fatalf("acquire after expiry: %d", resp.StatusCode)
	}
	if resp, e := ts.putWithLease(t, "/locked/n", stale, []byte("stale")); resp.StatusCode != 412 || e.Code != "LeaseIdMismatchWithBlobOperation" {
		t.Fatalf("write with the expired holder's id: %d %s", resp.StatusCode, e.Code)
	}
	// A break with a period hands the lease over once the period has passed.
	if resp, _ := ts.lease(t, "/locked/n", map[string]string{"x-weir-lease-action": "break", "x-weir-lease-break-period": "10"}); resp.StatusCode != 202 {
		t.Fatalf("break: %d", resp.StatusCode)
	}
	if resp, e := ts.lease(t, "/locked/n", map[string]string{"x-weir-lease-action": "acquire", "x-weir-lease-duration": "15"}); resp.StatusCode != 409 || e.Code != "LeaseAlreadyPresent" {
		t.Fatalf("acquire while breaking: %d %s", resp.StatusCode, e.Code)
	}
	if resp, _ := ts.putWithLease(t, "/locked/n", fresh, []byte("still mine")); resp.StatusCode != 200 {
		t.Fatalf("the holder writes during the break period: %d", resp.StatusCode)
	}
	clock.Advance(10 * time.Second)
	if resp, _ := ts.lease(t, "/locked/n", map[string]string{"x-weir-lease-action": "acquire", "x-weir-lease-duration": "15"}); resp.StatusCode != 201 {
		t.Fatalf("acquire after the break: %d", resp.StatusCode)
	}
	if resp, _ := ts.putWithLease(t, "/locked/n", fresh, []byte("too late")); resp.StatusCode != 412 {
		t.Fatalf("the old holder writes after the hand-over: %d", resp.StatusCode)
	}
	if got := mustGet(t, c, "locked", "n"); !bytes.Equal(got, []byte("still mine")) {
		t.Fatalf("final body %q", got)
	}
}
