package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// s3Blobs keeps blobs as objects of another S3 server, one immutable object per data id under
// a prefix of one bucket. A blob streams out as it comes in: up to one part it is held in memory
// and stored with one PUT; beyond, it becomes a multipart upload whose parts are sent while the
// next one fills. Either way the object exists only once finish returns, and the commit that
// references it comes after, so no version is visible before its bytes are stored.
type s3Blobs struct {
	client *s3.Client
	bucket string
	prefix string
}

// s3PartSize is the part size of a blob's multipart upload, and so the most memory a blob being
// written holds twice (the part being sent and the one filling): a blob no larger is one PUT.
const s3PartSize = 8 << 20

// openS3Blobs connects to the S3 server of an Options.Blobs URL and checks that its bucket is
// there. The URL's credentials win over accessKey and secretKey.
func openS3Blobs(ctx context.Context, raw, accessKey, secretKey string) (*s3Blobs, error) {
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
	return &s3Blobs{client: client, bucket: bucket, prefix: prefix}, nil
}

func (s *s3Blobs) key(id uint64) string { return fmt.Sprintf("%s%016x", s.prefix, id) }

func (s *s3Blobs) create(id uint64) (blobWriter, error) {
	return &s3BlobWriter{s: s, key: s.key(id)}, nil
}

// s3BlobWriter streams one blob to the S3 server.
type s3BlobWriter struct {
	s   *s3Blobs
	key string
	// buf is the part filling; it grows with what arrives, up to s3PartSize.
	buf []byte
	// uploadID names the multipart upload, once the blob outgrew one part.
	uploadID string
	parts    []types.CompletedPart
	// sending carries the outcome of the part being sent, if one is.
	sending chan error
	err     error
}

func (w *s3BlobWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n := 0
	for len(p) > 0 {
		k := min(len(p), s3PartSize-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(w.buf) == s3PartSize {
			if w.err = w.sendPart(); w.err != nil {
				return n, w.err
			}
		}
	}
	return n, nil
}

// sendPart starts sending the filled part, once the one before it is stored; the upload begins
// with the first part.
func (w *s3BlobWriter) sendPart() error {
	ctx := context.Background()
	if w.uploadID == "" {
		out, err := w.s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(w.s.bucket), Key: aws.String(w.key)})
		if err != nil {
			return fmt.Errorf("%w: the S3 data backend: begin blob upload: %v", ErrUnavailable, err)
		}
		w.uploadID = aws.ToString(out.UploadId)
	}
	if err := w.waitPart(); err != nil {
		return err
	}
	part, data := int32(len(w.parts)+1), w.buf
	w.parts = append(w.parts, types.CompletedPart{PartNumber: aws.Int32(part)})
	w.buf = nil
	w.sending = make(chan error, 1)
	go func(done chan<- error) {
		out, err := w.s.client.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(w.s.bucket), Key: aws.String(w.key),
			UploadId: aws.String(w.uploadID), PartNumber: aws.Int32(part), Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data)))})
		if err != nil {
			done <- fmt.Errorf("%w: the S3 data backend: store blob part %d: %v", ErrUnavailable, part, err)
			return
		}
		w.parts[part-1].ETag = out.ETag
		done <- nil
	}(w.sending)
	return nil
}

// waitPart waits for the part being sent, if one is.
func (w *s3BlobWriter) waitPart() error {
	if w.sending == nil {
		return nil
	}
	err := <-w.sending
	w.sending = nil
	return err
}

// finish stores what is left and completes the object; the server has it once that returns.
func (w *s3BlobWriter) finish() error {
	if w.err != nil {
		w.abort()
		return w.err
	}
	ctx := context.Background()
	if w.uploadID == "" {
		_, err := w.s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(w.s.bucket), Key: aws.String(w.key),
			Body: bytes.NewReader(w.buf), ContentLength: aws.Int64(int64(len(w.buf)))})
		w.buf = nil
		if err != nil {
			// Nothing references the blob yet: the write fails whole, and may be retried.
			return fmt.Errorf("%w: the S3 data backend: store blob: %v", ErrUnavailable, err)
		}
		return nil
	}
	if len(w.buf) > 0 {
		if err := w.sendPart(); err != nil {
			w.abort()
			return err
		}
	}
	if err := w.waitPart(); err != nil {
		w.abort()
		return err
	}
	_, err := w.s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(w.s.bucket), Key: aws.String(w.key),
		UploadId: aws.String(w.uploadID), MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts}})
	if err != nil {
		w.abort()
		return fmt.Errorf("%w: the S3 data backend: complete blob: %v", ErrUnavailable, err)
	}
	w.uploadID = ""
	return nil
}

// abort drops what was sent: nothing references the blob yet.
func (w *s3BlobWriter) abort() {
	w.waitPart()
	w.buf = nil
	if w.uploadID != "" {
		w.s.client.AbortMultipartUpload(context.Background(), &s3.AbortMultipartUploadInput{Bucket: aws.String(w.s.bucket),
			Key: aws.String(w.key), UploadId: aws.String(w.uploadID)})
		w.uploadID = ""
	}
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

// remove deletes a blob, and the multipart upload of one whose writer died before completing
// it (a gateway killed mid-upload: its pending blob is swept after the grace period).
func (s *s3Blobs) remove(id uint64) error {
	ctx := context.Background()
	key := s.key(id)
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)}); err != nil {
		return err
	}
	out, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(s.bucket), Prefix: aws.String(key)})
	if err != nil {
		return err
	}
	for _, u := range out.Uploads {
		if aws.ToString(u.Key) != key {
			continue
		}
		if _, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(s.bucket), Key: u.Key, UploadId: u.UploadId}); err != nil {
			return err
		}
	}
	return nil
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
