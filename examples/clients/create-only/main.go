// Command create-only claims a key exactly once: n clients race to create the same object with
// If-None-Match: *; weir checks the condition at commit, atomically with the write, so exactly
// one creates it and every other gets 412 PreconditionFailed. A 412 here is not a failure to
// retry: it means "someone else created it first", and the loser reads what the winner wrote.
// Run it again and every creator gets 412: the claim stays with the first winner.
//
// If-None-Match: * is honoured under every strategy; the bucket is created with the etag
// strategy, where it also counts as the condition every write must carry.
//
//	go run ./examples/clients/create-only -endpoint http://127.0.0.1:8080 -key leader -n 8
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "create-only:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("create-only", flag.ContinueOnError)
	endpoint := fs.String("endpoint", envOr("AWS_ENDPOINT_URL", "http://127.0.0.1:8080"), "weir's S3 endpoint")
	accessKey := fs.String("access-key", os.Getenv("AWS_ACCESS_KEY_ID"), "access key (default $AWS_ACCESS_KEY_ID)")
	secretKey := fs.String("secret-key", os.Getenv("AWS_SECRET_ACCESS_KEY"), "secret key (default $AWS_SECRET_ACCESS_KEY)")
	bucket := fs.String("bucket", "claims", "bucket, created with the etag strategy if missing")
	key := fs.String("key", "leader", "the object to create once")
	n := fs.Int("n", 8, "concurrent creators")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *accessKey == "" || *secretKey == "" {
		return errors.New("set -access-key and -secret-key (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	}
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *n}}
	defer httpc.CloseIdleConnections()
	c := s3.New(s3.Options{
		BaseEndpoint: aws.String(*endpoint),
		UsePathStyle: true,
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(*accessKey, *secretKey, ""),
		HTTPClient:   httpc,
	})
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(*bucket)},
		s3.WithAPIOptions(smithyhttp.SetHeaderValue("x-weir-concurrency", "etag")))
	if err != nil && errorCode(err) != "BucketAlreadyOwnedByYou" {
		return err
	}

	created := make([]bool, *n)
	owners := make([]string, *n) // what each creator found in the object afterwards
	errs := make([]error, *n)
	var wg sync.WaitGroup
	for i := range *n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			created[i], owners[i], errs[i] = claim(ctx, c, *bucket, *key, "creator-"+strconv.Itoa(i))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}

	winners, owner := 0, owners[0]
	for i := range *n {
		if created[i] {
			winners++
			fmt.Fprintf(stdout, "creator-%d created %s/%s\n", i, *bucket, *key)
		}
		if owners[i] != owner {
			return fmt.Errorf("creators disagree on the owner: %q and %q", owner, owners[i])
		}
	}
	fmt.Fprintf(stdout, "%d of %d creators got 412 PreconditionFailed; all read the owner: %s\n", *n-winners, *n, owner)
	if winners > 1 {
		return fmt.Errorf("%d creators all created %s/%s", winners, *bucket, *key)
	}
	return nil
}

// claim creates bucket/key holding name unless the key exists. created says whether this call
// created it; owner is what the object holds afterwards (name, or the earlier creator's).
func claim(ctx context.Context, c *s3.Client, bucket, key, name string) (created bool, owner string, err error) {
	_, err = c.PutObject(ctx, &s3.PutObjectInput{
		Bucket:      aws.String(bucket),
		Key:         aws.String(key),
		Body:        strings.NewReader(name),
		IfNoneMatch: aws.String("*"), // only if no object has this key
	})
	switch {
	case err == nil:
		return true, name, nil
	case httpStatus(err) == http.StatusPreconditionFailed:
		// Already exists: not an error, and not worth retrying. Read who has it.
	default:
		return false, "", err
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return false, "", err
	}
	defer out.Body.Close()
	body, err := io.ReadAll(out.Body)
	return false, string(body), err
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

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
