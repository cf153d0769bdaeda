package gateway_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// versionBody is the deterministic body of version v of the hot key: its size varies so a torn
// or truncated read cannot match another version's MD5 by accident.
func versionBody(v int) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("version-%06d|", v)), 20000+v*37)
}

// TestSnapshotReadsUnderOverwriteAndDelete races hundreds of GETs against writers that overwrite
// and delete the same key in a loop: every GET that succeeds returns exactly one written version,
// whole (its MD5 is one we wrote and its length matches Content-Length).
func TestSnapshotReadsUnderOverwriteAndDelete(t *testing.T) {
	ts := startServer(t, serverOptions{})
	ctx := context.Background()
	c := ts.root()
	mustCreateBucket(t, c, "snap")
	const versions = 40
	valid := map[[16]byte]int{}
	for v := 0; v < versions; v++ {
		valid[md5.Sum(versionBody(v))] = v
	}
	mustPut(t, c, "snap", "hot", versionBody(0))

	stop := make(chan struct{})
	var writers sync.WaitGroup
	var writes, deletes atomic.Int64
	for w := 0; w < 2; w++ {
		writers.Add(1)
		go func(w int) {
			defer writers.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if i%5 == 4 {
					if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("snap"), Key: aws.String("hot")}); err != nil {
						t.Errorf("delete: %v", err)
						return
					}
					deletes.Add(1)
					continue
				}
				v := (i*2 + w) % versions
				if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("snap"), Key: aws.String("hot"), Body: bytes.NewReader(versionBody(v))}); err != nil {
					t.Errorf("put: %v", err)
					return
				}
				writes.Add(1)
			}
		}(w)
	}

	var readers sync.WaitGroup
	var whole, missing atomic.Int64
	for r := 0; r < 8; r++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for i := 0; i < 40; i++ {
				out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("snap"), Key: aws.String("hot")})
				if httpStatus(err) == http.StatusNotFound {
					missing.Add(1)
					continue
				}
				if err != nil {
					t.Errorf("get: %v", err)
					return
				}
				// Read slowly in small pieces so that writes commit while the body streams.
				var buf bytes.Buffer
				p := make([]byte, 64<<10)
				for {
					n, err := out.Body.Read(p)
					buf.Write(p[:n])
					if err != nil {
						break
					}
					time.Sleep(100 * time.Microsecond)
				}
				out.Body.Close()
				if int64(buf.Len()) != aws.ToInt64(out.ContentLength) {
					t.Errorf("truncated: %d bytes of %d", buf.Len(), aws.ToInt64(out.ContentLength))
					return
				}
				if _, ok := valid[md5.Sum(buf.Bytes())]; !ok {
					t.Errorf("GET returned %d bytes that are no written version (torn read)", buf.Len())
					return
				}
				whole.Add(1)
			}
		}()
	}
	readers.Wait()
	close(stop)
	writers.Wait()
	t.Logf("%d whole reads, %d 404s, against %d overwrites and %d deletes", whole.Load(), missing.Load(), writes.Load(), deletes.Load())
	if whole.Load() < 100 {
		t.Fatalf("only %d successful GETs; the race did not exercise reads", whole.Load())
	}
	if writes.Load() < 10 || deletes.Load() < 2 {
		t.Fatalf("writers made %d writes and %d deletes during the reads; the race did not happen", writes.Load(), deletes.Load())
	}
}

// TestReadAfterWrite: once a PUT or DELETE returns, every later request sees it, across
// clients.
func TestReadAfterWrite(t *testing.T) {
	ts := startServer(t, serverOptions{})
	ctx := context.Background()
	a, b := ts.root(), ts.root()
	mustCreateBucket(t, a, "raw")
	for i := 0; i < 200; i++ {
		body := []byte(fmt.Sprintf("v%d", i))
		mustPut(t, a, "raw", "k", body)
		if got := mustGet(t, b, "raw", "k"); !bytes.Equal(got, body) {
			t.Fatalf("after PUT %d another client read %q", i, got)
		}
		if i%10 == 9 {
			if _, err := a.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("raw"), Key: aws.String("k")}); err != nil {
				t.Fatal(err)
			}
			if _, err := b.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("raw"), Key: aws.String("k")}); httpStatus(err) != http.StatusNotFound {
				t.Fatalf("after DELETE, HEAD: %v", err)
			}
		}
	}
}
