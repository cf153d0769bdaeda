// Command optimistic-retry increments a counter object from many concurrent clients without a
// lock and without losing an update: each client reads the object and its ETag, computes the new
// value and writes it back with If-Match; when another client wrote first, weir answers
// 412 PreconditionFailed and the client starts over from the read, after a short backoff.
//
// The bucket is created with weir's etag strategy (x-weir-concurrency: etag), under which every
// write must carry a condition (If-Match, If-None-Match: * or x-weir-if-generation-match), so an
// unconditional write cannot slip through.
//
//	go run ./examples/clients/optimistic-retry -endpoint http://127.0.0.1:8080 -n 16
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "optimistic-retry:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("optimistic-retry", flag.ContinueOnError)
	endpoint := fs.String("endpoint", envOr("AWS_ENDPOINT_URL", "http://127.0.0.1:8080"), "weir's S3 endpoint")
	accessKey := fs.String("access-key", os.Getenv("AWS_ACCESS_KEY_ID"), "access key (default $AWS_ACCESS_KEY_ID)")
	secretKey := fs.String("secret-key", os.Getenv("AWS_SECRET_ACCESS_KEY"), "secret key (default $AWS_SECRET_ACCESS_KEY)")
	bucket := fs.String("bucket", "counters", "bucket, created with the etag strategy if missing")
	key := fs.String("key", "n", "the counter object")
	n := fs.Int("n", 16, "concurrent increments, one per client goroutine")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *accessKey == "" || *secretKey == "" {
		return errors.New("set -access-key and -secret-key (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	}
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *n}}
	defer httpc.CloseIdleConnections()
	c := newClient(*endpoint, *accessKey, *secretKey, httpc)

	if err := createBucket(ctx, c, *bucket, "etag"); err != nil {
		return err
	}
	// Create the counter only if it does not exist yet: If-None-Match: * also satisfies the
	// etag strategy's "every write carries a condition".
	put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(*bucket), Key: aws.String(*key),
		Body: strings.NewReader("0"), IfNoneMatch: aws.String("*")})
	switch {
	case err == nil:
		h := rawHeaders(put.ResultMetadata)
		fmt.Fprintf(stdout, "created %s/%s = 0 (x-weir-concurrency: %s, x-weir-decided-by: %s)\n",
			*bucket, *key, h.Get("x-weir-concurrency"), h.Get("x-weir-decided-by"))
	case httpStatus(err) == http.StatusPreconditionFailed:
		// It exists already: count on from its current value.
	default:
		return err
	}
	start, _, err := read(ctx, c, *bucket, *key)
	if err != nil {
		return err
	}

	var retries atomic.Int64
	errs := make([]error, *n)
	var wg sync.WaitGroup
	for i := range *n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = increment(ctx, c, *bucket, *key, &retries)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}

	final, _, err := read(ctx, c, *bucket, *key)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d concurrent increments: %s/%s went from %d to %d; %d lost races (412) were retried\n",
		*n, *bucket, *key, start, final, retries.Load())
	if final != start+*n {
		return fmt.Errorf("lost update: expected %d, read %d", start+*n, final)
	}
	return nil
}

// increment is the optimistic retry loop: GET (keep the ETag), compute, PUT with If-Match; on
// 412 (or 409) start over from the GET after a jittered, growing pause.
func increment(ctx context.Context, c *s3.Client, bucket, key string, retries *atomic.Int64) error {
	const maxAttempts = 100
	pause := 2 * time.Millisecond
	for attempt := 1; ; attempt++ {
		n, etag, err := read(ctx, c, bucket, key)
		if err != nil {
			return err
		}
		_, err = c.PutObject(ctx, &s3.PutObjectInput{
			Bucket:  aws.String(bucket),
			Key:     aws.String(key),
			Body:    strings.NewReader(strconv.Itoa(n + 1)),
			IfMatch: aws.String(etag), // commit only if the object is still the version read
		})
		if err == nil {
			return nil
		}
		if s := httpStatus(err); (s != http.StatusPreconditionFailed && s != http.StatusConflict) || attempt == maxAttempts {
			return fmt.Errorf("increment (attempt %d): %w", attempt, err)
		}
		// Another client committed between our GET and PUT: back off, then re-read.
		retries.Add(1)
		select {
		case <-time.After(pause/2 + rand.N(pause)):
		case <-ctx.Done():
			return ctx.Err()
		}
		pause = min(2*pause, 200*time.Millisecond)
	}
}

// read returns the counter's value and its ETag.
func read(ctx context.Context, c *s3.Client, bucket, key string) (int, string, error) {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return 0, "", err
	}
	defer out.Body.Close()
	body, err := io.ReadAll(out.Body)
	if err != nil {
		return 0, "", err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(body)))
	if err != nil {
		return 0, "", fmt.Errorf("%s/%s is not a counter: %w", bucket, key, err)
	}
	return n, aws.ToString(out.ETag), nil
}

// newClient returns an aws-sdk-go-v2 S3 client for weir: path-style addressing (bucket names
// in the path, no DNS per bucket), any region (weir accepts every region in the signature;
// us-east-1 is its default), static credentials.
func newClient(endpoint, accessKey, secretKey string, httpc *http.Client) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
		HTTPClient:   httpc,
	})
}

// createBucket creates bucket with weir's strategy header; a bucket we already own is fine.
func createBucket(ctx context.Context, c *s3.Client, bucket, strategy string) error {
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)},
		s3.WithAPIOptions(smithyhttp.SetHeaderValue("x-weir-concurrency", strategy)))
	if errorCode(err) == "BucketAlreadyOwnedByYou" {
		return nil
	}
	return err
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
