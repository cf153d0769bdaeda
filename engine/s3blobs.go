package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// s3Blobs keeps blobs as objects of another S3 server, one immutable object per data id under
// a prefix of one bucket. A blob is spooled to a local file while it streams in, then stored
// with one PUT that must succeed before finish returns: the commit that references it comes
// after, so no version is visible before its bytes are stored.
type s3Blobs struct {
	client *s3.Client
	bucket string
	prefix string
	spool  string // directory of blobs being written
}

// openS3Blobs connects to the S3 server of an Options.Blobs URL and checks that its bucket is
// there. The URL's credentials win over accessKey and secretKey.
func openS3Blobs(ctx context.Context, raw, accessKey, secretKey, spoolDir string) (*s3Blobs, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's message quotes the URL, secret and all.
		return nil, fmt.Errorf("engine: blobs %s is not a URL", redactURL(raw))
	}
	scheme := map[string]string{"s3": "http", "s3s": "https"}[u.Scheme]
	if scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("engine: blobs %s: want s3://ACCESS:SECRET@host:port/bucket (or s3s:// for HTTPS)", redactURL(raw))
	}
	if u.User != nil {
		accessKey = u.User.Username()
		secretKey, _ = u.User.Password()
	}
	if accessKey == "" || secretKey == "" {
		return nil, fmt.Errorf("engine: blobs %s: no credentials (in the URL, or WEIR_BLOBS_ACCESS_KEY and WEIR_BLOBS_SECRET_KEY)", redactURL(raw))
	}
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if bucket == "" {
		return nil, fmt.Errorf("engine: blobs %s: the URL names no bucket", redactURL(raw))
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	client := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(scheme + "://" + u.Host),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
		HTTPClient:   &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		// Checksums only where S3 requires them: not every S3 server knows the newer ones.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return nil, fmt.Errorf("engine: blobs %s: bucket %s: %w", redactURL(raw), bucket, err)
	}
	if err := os.MkdirAll(spoolDir, 0o700); err != nil {
		return nil, err
	}
	return &s3Blobs{client: client, bucket: bucket, prefix: prefix, spool: spoolDir}, nil
}

func (s *s3Blobs) key(id uint64) string { return fmt.Sprintf("%s%016x", s.prefix, id) }

func (s *s3Blobs) create(id uint64) (blobWriter, error) {
	f, err := os.CreateTemp(s.spool, fmt.Sprintf("%016x-*", id))
	if err != nil {
		return nil, fmt.Errorf("engine: create blob: %w", err)
	}
	return &s3BlobWriter{s: s, id: id, f: f}, nil
}

type s3BlobWriter struct {
	s    *s3Blobs
	id   uint64
	f    *os.File
	size int64
}

func (w *s3BlobWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.size += int64(n)
	return n, err
}

// finish stores the spooled body with one PUT; the server has it once that returns.
func (w *s3BlobWriter) finish() error {
	defer w.abort()
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	_, err := w.s.client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(w.s.bucket), Key: aws.String(w.s.key(w.id)),
		Body: w.f, ContentLength: aws.Int64(w.size)})
	if err != nil {
		// Nothing references the blob yet: the write fails whole, and may be retried.
		return fmt.Errorf("%w: the S3 data backend: store blob: %v", ErrUnavailable, err)
	}
	return nil
}

// abort drops the spool file; nothing was stored yet.
func (w *s3BlobWriter) abort() {
	w.f.Close()
	os.Remove(w.f.Name())
}

func (s *s3Blobs) open(id uint64) (blobReader, error) {
	return &s3BlobReader{s: s, key: s.key(id)}, nil
}

// s3BlobReader reads a blob through one ranged GET that it keeps reading while the reads are
// sequential (a GET streams a range front to back), and opens anew only after a seek.
type s3BlobReader struct {
	s    *s3Blobs
	key  string
	mu   sync.Mutex
	body io.ReadCloser
	pos  int64
}

func (r *s3BlobReader) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	if r.body == nil || r.pos != off {
		if r.body != nil {
			r.body.Close()
			r.body = nil
		}
		out, err := r.s.client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(r.s.bucket), Key: aws.String(r.key),
			Range: aws.String("bytes=" + strconv.FormatInt(off, 10) + "-")})
		if err != nil {
			return 0, errors.Join(errCorrupt, err)
		}
		r.body, r.pos = out.Body, off
	}
	n, err := io.ReadFull(r.body, p)
	r.pos += int64(n)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	if err != nil {
		r.body.Close()
		r.body = nil
	}
	return n, err
}

func (r *s3BlobReader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
	return nil
}

func (s *s3Blobs) remove(id uint64) error {
	_, err := s.client.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.key(id))})
	return err
}

func (s *s3Blobs) walk(fn func(id uint64) error) error {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(s.prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			return err
		}
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), s.prefix)
			id, err := strconv.ParseUint(name, 16, 64)
			if err != nil || len(name) != 16 {
				continue // not ours
			}
			if err := fn(id); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *s3Blobs) close() {}
