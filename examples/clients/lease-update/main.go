// Command lease-update changes an object only while holding its lease, weir's Azure-Blob-style
// lock: acquire the lease (PUT /{bucket}/{key}?lease, x-weir-lease-action: acquire), read, write
// with x-weir-lease-id, release. While the lease is held, a write without its id is refused with
// 412 LeaseIdMissing; a second acquire gets 409 LeaseAlreadyPresent and is retried after a pause.
//
// The lease API is weir's own, so aws-sdk-go-v2 has no operation for it: leaseAction signs a
// plain net/http request with the SDK's SigV4 signer. The object writes are ordinary SDK calls
// with one extra header, added by a per-call middleware.
//
// The bucket is created with the lease strategy (x-weir-concurrency: lease): changing an
// existing object there always needs its lease; creating a new key needs none.
//
//	go run ./examples/clients/lease-update -endpoint http://127.0.0.1:8080 -n 8
package main

import (
	"context"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "lease-update:", err)
		os.Exit(1)
	}
}

// client holds what both kinds of request need: the SDK client for object operations and the
// signer, credentials and HTTP client for weir's lease requests.
type client struct {
	s3       *s3.Client
	http     *http.Client
	endpoint string
	creds    aws.CredentialsProvider
	signer   *v4.Signer
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("lease-update", flag.ContinueOnError)
	endpoint := fs.String("endpoint", envOr("AWS_ENDPOINT_URL", "http://127.0.0.1:8080"), "weir's S3 endpoint")
	accessKey := fs.String("access-key", os.Getenv("AWS_ACCESS_KEY_ID"), "access key (default $AWS_ACCESS_KEY_ID)")
	secretKey := fs.String("secret-key", os.Getenv("AWS_SECRET_ACCESS_KEY"), "secret key (default $AWS_SECRET_ACCESS_KEY)")
	bucket := fs.String("bucket", "locked", "bucket, created with the lease strategy if missing")
	key := fs.String("key", "n", "the counter object")
	n := fs.Int("n", 8, "concurrent lock-protected increments after the step-by-step one")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *accessKey == "" || *secretKey == "" {
		return errors.New("set -access-key and -secret-key (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	}
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *n + 1}}
	defer httpc.CloseIdleConnections()
	creds := credentials.NewStaticCredentialsProvider(*accessKey, *secretKey, "")
	c := &client{
		s3: s3.New(s3.Options{
			BaseEndpoint: aws.String(*endpoint),
			UsePathStyle: true,
			Region:       "us-east-1",
			Credentials:  creds,
			HTTPClient:   httpc,
		}),
		http: httpc, endpoint: strings.TrimSuffix(*endpoint, "/"), creds: creds, signer: v4.NewSigner(),
	}

	_, err := c.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(*bucket)}, withHeader("x-weir-concurrency", "lease"))
	if err != nil && errorCode(err) != "BucketAlreadyOwnedByYou" {
		return err
	}
	// Creating a key needs no lease; If-None-Match: * keeps an existing counter as it is.
	_, err = c.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(*bucket), Key: aws.String(*key),
		Body: strings.NewReader("0"), IfNoneMatch: aws.String("*")})
	if err != nil && httpStatus(err) != http.StatusPreconditionFailed {
		return err
	}
	start, err := c.read(ctx, *bucket, *key, "")
	if err != nil {
		return err
	}

	// 1. One lock-protected update, step by step.
	resp, err := c.leaseAction(ctx, *bucket, *key, map[string]string{
		"x-weir-lease-action":   "acquire",
		"x-weir-lease-duration": "15", // seconds (15..60), or -1 for a lease that never expires
	})
	if err != nil {
		return err
	}
	leaseID := resp.Header.Get("x-weir-lease-id")
	fmt.Fprintf(stdout, "acquire: %d, x-weir-lease-id: %s\n", resp.StatusCode, leaseID)
	head, err := c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(*bucket), Key: aws.String(*key)})
	if err != nil {
		return err
	}
	h := rawHeaders(head.ResultMetadata)
	fmt.Fprintf(stdout, "HEAD: x-weir-lease-state: %s, x-weir-lease-status: %s, x-weir-lease-duration: %s\n",
		h.Get("x-weir-lease-state"), h.Get("x-weir-lease-status"), h.Get("x-weir-lease-duration"))

	v, err := c.read(ctx, *bucket, *key, leaseID)
	if err != nil {
		return err
	}
	// Anyone writing without the lease id is refused while the lease is held.
	_, err = c.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(*bucket), Key: aws.String(*key), Body: strings.NewReader("-1")})
	fmt.Fprintf(stdout, "PUT without x-weir-lease-id: %d %s\n", httpStatus(err), errorCode(err))
	if errorCode(err) != "LeaseIdMissing" {
		return fmt.Errorf("a write without the lease id was not refused with LeaseIdMissing: %v", err)
	}
	put, err := c.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(*bucket), Key: aws.String(*key),
		Body: strings.NewReader(strconv.Itoa(v + 1))}, withHeader("x-weir-lease-id", leaseID))
	if err != nil {
		return err
	}
	h = rawHeaders(put.ResultMetadata)
	fmt.Fprintf(stdout, "PUT with x-weir-lease-id: 200 (x-weir-concurrency: %s, x-weir-decided-by: %s)\n",
		h.Get("x-weir-concurrency"), h.Get("x-weir-decided-by"))
	resp, err = c.leaseAction(ctx, *bucket, *key, map[string]string{"x-weir-lease-action": "release", "x-weir-lease-id": leaseID})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "release: %d\n", resp.StatusCode)

	// 2. The same update from n clients at once: the lease serialises them.
	var busy atomic.Int64
	errs := make([]error, *n)
	var wg sync.WaitGroup
	for i := range *n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.lockedUpdate(ctx, *bucket, *key, &busy, func(v int) int { return v + 1 })
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	final, err := c.read(ctx, *bucket, *key, "")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "1 + %d lock-protected increments: %s/%s went from %d to %d; %d acquires got 409 LeaseAlreadyPresent and were retried\n",
		*n, *bucket, *key, start, final, busy.Load())
	if final != start+1+*n {
		return fmt.Errorf("lost update: expected %d, read %d", start+1+*n, final)
	}
	return nil
}

// lockedUpdate is the lock-protected update: acquire (retry while another client holds the
// lease), read, write with the lease id, release. The lease is released even when the update
// fails; a client that dies holding it loses it when its 15 seconds run out.
func (c *client) lockedUpdate(ctx context.Context, bucket, key string, busy *atomic.Int64, update func(int) int) error {
	var leaseID string
	pause := 2 * time.Millisecond
	for {
		resp, err := c.leaseAction(ctx, bucket, key, map[string]string{"x-weir-lease-action": "acquire", "x-weir-lease-duration": "15"})
		if err == nil {
			leaseID = resp.Header.Get("x-weir-lease-id")
			break
		}
		if !errors.Is(err, errLeaseConflict) {
			return err
		}
		busy.Add(1) // 409 LeaseAlreadyPresent: someone else holds it
		select {
		case <-time.After(pause/2 + rand.N(pause)):
		case <-ctx.Done():
			return ctx.Err()
		}
		pause = min(2*pause, 100*time.Millisecond)
	}
	defer c.leaseAction(context.WithoutCancel(ctx), bucket, key, map[string]string{"x-weir-lease-action": "release", "x-weir-lease-id": leaseID})

	v, err := c.read(ctx, bucket, key, leaseID)
	if err != nil {
		return err
	}
	_, err = c.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
		Body: strings.NewReader(strconv.Itoa(update(v)))}, withHeader("x-weir-lease-id", leaseID))
	return err
}

// read returns the counter's value. A GET that names a lease id is served only while that
// lease is the object's active one, so the holder knows it still holds it.
func (c *client) read(ctx context.Context, bucket, key, leaseID string) (int, error) {
	var opts []func(*s3.Options)
	if leaseID != "" {
		opts = append(opts, withHeader("x-weir-lease-id", leaseID))
	}
	out, err := c.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}, opts...)
	if err != nil {
		return 0, err
	}
	defer out.Body.Close()
	body, err := io.ReadAll(out.Body)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(body)))
	if err != nil {
		return 0, fmt.Errorf("%s/%s is not a counter: %w", bucket, key, err)
	}
	return n, nil
}

// errLeaseConflict marks a 409 answer to a lease request (LeaseAlreadyPresent and the other
// Lease* conflicts): the lease is not in a state that allows the action right now.
var errLeaseConflict = errors.New("lease conflict")

// emptySHA256 is the SHA-256 of an empty body, the payload hash of a lease request.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// leaseAction sends weir's PUT /{bucket}/{key}?lease with the given x-weir-lease-* headers,
// signed with SigV4 like any S3 request. It returns the response (its body already read and
// closed) or, for a status other than 200/201/202, an error with weir's S3 error code.
func (c *client) leaseAction(ctx context.Context, bucket, key string, headers map[string]string) (*http.Response, error) {
	u := c.endpoint + "/" + bucket + "/" + strings.ReplaceAll(url.PathEscape(key), "%2F", "/") + "?lease"
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("X-Amz-Content-Sha256", emptySHA256) // weir, like S3, wants the payload hash
	creds, err := c.creds.Retrieve(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.signer.SignHTTP(ctx, creds, req, emptySHA256, "s3", "us-east-1", time.Now()); err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 300 {
		return resp, nil
	}
	var e struct{ Code, Message string }
	_ = xml.Unmarshal(body, &e)
	err = fmt.Errorf("lease %s on %s/%s: %d %s: %s", headers["x-weir-lease-action"], bucket, key, resp.StatusCode, e.Code, e.Message)
	if resp.StatusCode == http.StatusConflict {
		err = fmt.Errorf("%w: %w", errLeaseConflict, err)
	}
	return resp, err
}

// withHeader adds one request header to an SDK call (signed along with the others).
func withHeader(name, value string) func(*s3.Options) {
	return s3.WithAPIOptions(smithyhttp.SetHeaderValue(name, value))
}

// httpStatus is the HTTP status of a failed SDK call (0 when there was no response).
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// errorCode is the S3 error code of a failed SDK call ("" when none).
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// rawHeaders are the HTTP response headers behind an SDK result (weir's x-weir-* among them).
func rawHeaders(md middleware.Metadata) http.Header {
	if r, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response); ok {
		return r.Header
	}
	return http.Header{}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
