package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/weirproject/weir/gateway/gatewaytest"
)

// TestLeaseUpdate runs the program against a real weir and checks what its user would: the
// acquire answered 201 with a lease id, HEAD reported the object leased, a write without the
// lease id was refused (412 LeaseIdMissing), the write with it went through under the lease
// strategy, and 1 + 8 concurrent lock-protected increments end at 9 with every lease released.
func TestLeaseUpdate(t *testing.T) {
	endpoint := gatewaytest.Start(t, gatewaytest.Options{}).URL
	args := []string{"-endpoint", endpoint, "-access-key", gatewaytest.RootAccessKey, "-secret-key", gatewaytest.RootSecretKey, "-n", "8"}
	var out bytes.Buffer
	if err := run(context.Background(), args, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	t.Log(out.String())
	for _, want := range []string{
		"acquire: 201, x-weir-lease-id: ",
		"HEAD: x-weir-lease-state: leased, x-weir-lease-status: locked, x-weir-lease-duration: fixed\n",
		"PUT without x-weir-lease-id: 412 LeaseIdMissing\n",
		"PUT with x-weir-lease-id: 200 (x-weir-concurrency: lease, x-weir-decided-by: bucket)\n",
		"release: 200\n",
		"locked/n went from 0 to 9;",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	ctx := context.Background()
	c := testClient(endpoint)
	head, err := c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("locked"), Key: aws.String("n")})
	if err != nil {
		t.Fatal(err)
	}
	if h := rawHeaders(head.ResultMetadata); h.Get("x-weir-lease-state") != "available" || h.Get("x-weir-lease-status") != "unlocked" {
		t.Fatalf("after the program the lease is %s/%s, want available/unlocked (a lease was not released)",
			h.Get("x-weir-lease-state"), h.Get("x-weir-lease-status"))
	}
	// The bucket is under the lease strategy: changing the object without a lease is refused.
	_, err = c.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("locked"), Key: aws.String("n"), Body: strings.NewReader("0")})
	if httpStatus(err) != http.StatusPreconditionFailed || errorCode(err) != "LeaseNotPresentWithBlobOperation" {
		t.Fatalf("unleased PUT on the lease bucket: %v (want 412 LeaseNotPresentWithBlobOperation)", err)
	}

	// While someone else holds the lease, the program's acquire is refused with 409.
	resp, err := c.leaseAction(ctx, "locked", "n", map[string]string{"x-weir-lease-action": "acquire", "x-weir-lease-duration": "-1"})
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("acquire by the test: %v", err)
	}
	held := resp.Header.Get("x-weir-lease-id")
	out.Reset()
	err = run(ctx, args, &out)
	if err == nil || !strings.Contains(err.Error(), "409 LeaseAlreadyPresent") {
		t.Fatalf("run while another client holds the lease: %v (want 409 LeaseAlreadyPresent)", err)
	}
	if _, err := c.leaseAction(ctx, "locked", "n", map[string]string{"x-weir-lease-action": "release", "x-weir-lease-id": held}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(ctx, args, &out); err != nil {
		t.Fatalf("run after the release: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "locked/n went from 9 to 18;") {
		t.Fatalf("second run, want 9 → 18:\n%s", out.String())
	}
}

func testClient(endpoint string) *client {
	creds := credentials.NewStaticCredentialsProvider(gatewaytest.RootAccessKey, gatewaytest.RootSecretKey, "")
	return &client{
		s3: s3.New(s3.Options{BaseEndpoint: aws.String(endpoint), UsePathStyle: true, Region: "us-east-1",
			Credentials: creds, HTTPClient: http.DefaultClient}),
		http: http.DefaultClient, endpoint: endpoint, creds: creds, signer: v4.NewSigner(),
	}
}
