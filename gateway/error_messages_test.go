package gateway_test

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/weirproject/weir/engine"
	"github.com/weirproject/weir/gateway"
)

// weirHeader matches a header name of weir's or S3's, which the engine's errors must not name:
// the engine knows no HTTP.
var weirHeader = regexp.MustCompile(`(?i)x-(weir|amz)-`)

// TestErrorTableMessagesNameNoHeader scans every message the error table gives clients.
func TestErrorTableMessagesNameNoHeader(t *testing.T) {
	for _, m := range gateway.ErrorTableMessages() {
		if m == "" {
			t.Errorf("an error table row gives clients an empty message")
		}
		if weirHeader.MatchString(m) {
			t.Errorf("error table message names a header: %q", m)
		}
	}
}

// TestEngineErrorsReachClientsAsTheTableSays drives engine errors through the server — a wrong
// lease id, a missing one, an If-Match and a generation that are not the current version's —
// and checks that the client reads the table's message, which names no header and gives away
// neither the stored ETag nor the stored generation.
func TestEngineErrorsReachClientsAsTheTableSays(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.root()
	ctx := context.Background()
	mustCreateBucket(t, c, "msgs")
	var etag string
	for i := 0; i < 12; i++ { // generation 12: a number no message has by chance
		out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("msgs"), Key: aws.String("k"), Body: strings.NewReader("v" + strconv.Itoa(i))})
		if err != nil {
			t.Fatal(err)
		}
		etag = strings.Trim(aws.ToString(out.ETag), `"`)
	}
	mustPut(t, c, "msgs", "leased", []byte("x"))
	const held, other = "0b9d2a52-6b0f-4a5c-9c11-2d4b0a1f3e01", "7f0c8f7e-1d1c-4f25-8e0b-55a3f0b7c6d2"
	ts.do(t, ts.signed(t, "PUT", "/msgs/leased?lease", nil, map[string]string{"x-weir-lease-action": "acquire",
		"x-weir-lease-duration": "-1", "x-weir-proposed-lease-id": held}, "", time.Now()))

	stored := regexp.MustCompile(`\b(12|` + etag + `)\b`)
	for _, tc := range []struct {
		name, method, path string
		hdr                map[string]string
		status             int
		code               string
		sentinel           error
	}{
		{"read with another lease id", "GET", "/msgs/leased", map[string]string{"x-weir-lease-id": other},
			412, "LeaseIdMismatchWithBlobOperation", engine.ErrLeaseIDMismatchWithObjectOperation},
		{"copy from a source under another lease id", "PUT", "/msgs/copy", map[string]string{"x-amz-copy-source": "/msgs/leased", "x-weir-source-lease-id": other},
			412, "LeaseIdMismatchWithBlobOperation", engine.ErrLeaseIDMismatchWithObjectOperation},
		{"write without the lease id", "PUT", "/msgs/leased", nil,
			412, "LeaseIdMissing", engine.ErrLeaseIDMissing},
		{"read with a lease id of an unleased object", "GET", "/msgs/k", map[string]string{"x-weir-lease-id": other},
			412, "LeaseNotPresentWithBlobOperation", engine.ErrLeaseNotPresentWithObjectOperation},
		{"If-Match of another version", "PUT", "/msgs/k", map[string]string{"If-Match": `"0123456789abcdef0123456789abcdef"`},
			412, "PreconditionFailed", engine.ErrPreconditionFailed},
		{"If-None-Match of the current version", "PUT", "/msgs/k", map[string]string{"If-None-Match": `"` + etag + `"`},
			412, "PreconditionFailed", engine.ErrPreconditionFailed},
		{"another generation", "PUT", "/msgs/k", map[string]string{"x-weir-if-generation-match": "3"},
			412, "PreconditionFailed", engine.ErrPreconditionFailed},
		{"generation 0 of an existing key", "DELETE", "/msgs/k", map[string]string{"x-weir-if-generation-match": "0"},
			412, "PreconditionFailed", engine.ErrPreconditionFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := expectError(t, ts, ts.signed(t, tc.method, tc.path, []byte("new"), tc.hdr, "", time.Now()), tc.status, tc.code)
			if want := gateway.ClientMessage(tc.sentinel); e.Message != want {
				t.Errorf("message %q, want the table's %q", e.Message, want)
			}
			if weirHeader.MatchString(e.Message) || stored.MatchString(e.Message) {
				t.Errorf("message %q names a header or the stored version", e.Message)
			}
		})
	}
}
