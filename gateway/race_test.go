package gateway_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// The seeds' consistency cases, each raced with real goroutines against the real server.

// gatedReader returns head, then blocks until gate closes, then returns tail: an upload that is
// still streaming while other requests commit.
type gatedReader struct {
	head, tail []byte
	started    chan struct{}
	gate       chan struct{}
	once       sync.Once
}

func newGatedReader(body []byte) *gatedReader {
	return &gatedReader{head: body[:len(body)/2], tail: body[len(body)/2:], started: make(chan struct{}), gate: make(chan struct{})}
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if len(g.head) > 0 {
		n := copy(p, g.head)
		g.head = g.head[n:]
		return n, nil
	}
	g.once.Do(func() { close(g.started) })
	<-g.gate
	if len(g.tail) == 0 {
		return 0, io.EOF
	}
	n := copy(p, g.tail)
	g.tail = g.tail[n:]
	return n, nil
}

// streamingClient sends bodies it cannot rewind (UNSIGNED-PAYLOAD, no checksum), as a client
// streaming from a pipe does.
func (ts *testServer) streamingClient() *s3.Client {
	return ts.root(func(o *s3.Options) {
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
	})
}

func generationOf(t testing.TB, md any) uint64 {
	t.Helper()
	var raw *smithyhttp.Response
	switch m := md.(type) {
	case *s3.PutObjectOutput:
		raw = awsmiddleware.GetRawResponse(m.ResultMetadata).(*smithyhttp.Response)
	case *s3.GetObjectOutput:
		raw = awsmiddleware.GetRawResponse(m.ResultMetadata).(*smithyhttp.Response)
	case *s3.HeadObjectOutput:
		raw = awsmiddleware.GetRawResponse(m.ResultMetadata).(*smithyhttp.Response)
	}
	g, err := strconv.ParseUint(raw.Header.Get("x-weir-generation"), 10, 64)
	if err != nil {
		t.Fatalf("x-weir-generation: %v", err)
	}
	return g
}

// rawHeaders returns the HTTP response headers behind an SDK result.
func rawHeaders(md middleware.Metadata) http.Header {
	return awsmiddleware.GetRawResponse(md).(*smithyhttp.Response).Header
}

func withHeader(name, value string) func(*s3.Options) {
	return func(o *s3.Options) { o.APIOptions = append(o.APIOptions, smithyhttp.SetHeaderValue(name, value)) }
}

// Case 1: concurrent uploads of one key both succeed; the last commit is what everyone reads.
func TestConcurrentUploadsOfOneKey(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.root()
	mustCreateBucket(t, c, "seeds")
	for round := 0; round < 20; round++ {
		bodies := [][]byte{randomBytes(300<<10, int64(round)), randomBytes(200<<10, int64(round+1000))}
		gens := make([]uint64, 2)
		var wg sync.WaitGroup
		for i := range bodies {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				out := mustPut(t, c, "seeds", "same", bodies[i])
				gens[i] = generationOf(t, out)
			}(i)
		}
		wg.Wait()
		last := 0
		if gens[1] > gens[0] {
			last = 1
		}
		for r := 0; r < 3; r++ {
			if got := mustGet(t, ts.root(), "seeds", "same"); !bytes.Equal(got, bodies[last]) {
				t.Fatalf("round %d: a reader got %d bytes, not the last commit (generation %d)", round, len(got), gens[last])
			}
		}
	}
}

// Case 2: an upload racing a delete that commits before the upload's commit: the upload wins
// and is visible.
func TestUploadRacingDeleteBeforeCommit(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.streamingClient()
	mustCreateBucket(t, c, "seeds")
	mustPut(t, c, "seeds", "k", []byte("old version"))
	body := randomBytes(1<<20, 2)
	g := newGatedReader(body)
	done := make(chan error, 1)
	go func() {
		_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("seeds"), Key: aws.String("k"), Body: g, ContentLength: aws.Int64(int64(len(body)))})
		done <- err
	}()
	<-g.started // half the body is on the server
	if _, err := c.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String("seeds"), Key: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	close(g.gate)
	if err := <-done; err != nil {
		t.Fatalf("upload: %v", err)
	}
	if got := mustGet(t, c, "seeds", "k"); !bytes.Equal(got, body) {
		t.Fatalf("after the upload committed: %d bytes, want the upload", len(got))
	}
}

// Case 3: a delete racing the commit: either outcome, never a torn object.
func TestDeleteRacingCommit(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.root()
	mustCreateBucket(t, c, "seeds")
	var present, absent int
	for round := 0; round < 50; round++ {
		body := randomBytes(64<<10+round, int64(round))
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); mustPut(t, c, "seeds", "k", body) }()
		go func() {
			defer wg.Done()
			if _, err := c.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String("seeds"), Key: aws.String("k")}); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()
		out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("seeds"), Key: aws.String("k")})
		switch {
		case httpStatus(err) == http.StatusNotFound:
			absent++
		case err != nil:
			t.Fatal(err)
		default:
			if got := readAll(t, out.Body); !bytes.Equal(got, body) {
				t.Fatalf("round %d: torn object (%d bytes)", round, len(got))
			}
			present++
		}
		c.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String("seeds"), Key: aws.String("k")})
	}
	t.Logf("upload won %d times, delete won %d times", present, absent)
}

// slowGet starts a GET and reads its first KiB.
func slowGet(t *testing.T, c *s3.Client, key string) (*s3.GetObjectOutput, []byte) {
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("seeds"), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 1<<10)
	if _, err := io.ReadFull(out.Body, head); err != nil {
		t.Fatal(err)
	}
	return out, head
}

// Case 4: a download racing a delete completes whole; later GETs are 404.
func TestDownloadRacingDelete(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.root()
	mustCreateBucket(t, c, "seeds")
	body := randomBytes(8<<20, 4)
	mustPut(t, c, "seeds", "k", body)
	out, head := slowGet(t, c, "k")
	if _, err := c.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String("seeds"), Key: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	if err := ts.Engine.Compact(); err != nil { // the deleted chunks' space is reclaimed meanwhile
		t.Fatal(err)
	}
	rest := readAll(t, out.Body)
	if !bytes.Equal(append(head, rest...), body) {
		t.Fatalf("the started download got %d bytes, not the whole object", len(head)+len(rest))
	}
	if _, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("seeds"), Key: aws.String("k")}); httpStatus(err) != http.StatusNotFound {
		t.Fatalf("GET after delete: %v", err)
	}
}

// Case 5: a download racing an overwrite returns the whole old version; later GETs the new.
func TestDownloadRacingOverwrite(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.root()
	mustCreateBucket(t, c, "seeds")
	old, next := randomBytes(8<<20, 5), randomBytes(3<<20, 6)
	mustPut(t, c, "seeds", "k", old)
	out, head := slowGet(t, c, "k")
	mustPut(t, c, "seeds", "k", next)
	if err := ts.Engine.Compact(); err != nil {
		t.Fatal(err)
	}
	rest := readAll(t, out.Body)
	if !bytes.Equal(append(head, rest...), old) {
		t.Fatalf("the started download got %d bytes, not the whole old version", len(head)+len(rest))
	}
	if got := mustGet(t, c, "seeds", "k"); !bytes.Equal(got, next) {
		t.Fatal("GET after the overwrite did not return the new version")
	}
}

// Case 6: the same part uploaded concurrently: the last UploadPart to commit wins and ListParts
// shows its ETag.
func TestSamePartUploadedConcurrently(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.streamingClient()
	mustCreateBucket(t, c, "seeds")
	ctx := context.Background()
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("seeds"), Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	first, second := randomBytes(1<<20, 7), randomBytes(1<<20, 8)
	g := newGatedReader(first)
	done := make(chan error, 1)
	go func() { // starts first, commits last
		_, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("seeds"), Key: aws.String("mp"), UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: g, ContentLength: aws.Int64(1 << 20)})
		done <- err
	}()
	<-g.started
	if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("seeds"), Key: aws.String("mp"), UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(second)}); err != nil {
		t.Fatal(err)
	}
	close(g.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("seeds"), Key: aws.String("mp"), UploadId: up.UploadId})
	if err != nil || len(lp.Parts) != 1 || aws.ToString(lp.Parts[0].ETag) != quotedMD5(first) {
		t.Fatalf("ListParts after two uploads of part 1: %+v %v (want the last commit's ETag %s)", lp.Parts, err, quotedMD5(first))
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("seeds"), Key: aws.String("mp"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: lp.Parts[0].ETag}}}}); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, c, "seeds", "mp"); !bytes.Equal(got, first) {
		t.Fatal("completed object is not the last committed part")
	}
}

// TestOptimisticCounter: 32 clients read → increment → PUT If-Match, retrying on 412. The final
// value equals the number of successful PUTs: no update is lost. Then the same with
// x-weir-if-generation-match.
func TestOptimisticCounter(t *testing.T) {
	for _, mode := range []string{"if-match", "generation"} {
		t.Run(mode, func(t *testing.T) {
			ts := startServer(t, serverOptions{})
			c := ts.root()
			mustCreateBucket(t, c, "counter")
			mustPut(t, c, "counter", "n", []byte("0"))
			const clients, each = 32, 3
			var successes, conflicts atomic.Int64
			var wg sync.WaitGroup
			for w := 0; w < clients; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx := context.Background()
					for done := 0; done < each; {
						out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("counter"), Key: aws.String("n")})
						if err != nil {
							t.Error(err)
							return
						}
						n, _ := strconv.Atoi(string(readAll(t, out.Body)))
						in := &s3.PutObjectInput{Bucket: aws.String("counter"), Key: aws.String("n"), Body: bytes.NewReader([]byte(strconv.Itoa(n + 1)))}
						var opts []func(*s3.Options)
						if mode == "if-match" {
							in.IfMatch = out.ETag
						} else {
							opts = append(opts, withHeader("x-weir-if-generation-match", strconv.FormatUint(generationOf(t, out), 10)))
						}
						_, err = c.PutObject(ctx, in, opts...)
						switch {
						case err == nil:
							successes.Add(1)
							done++
						case httpStatus(err) == http.StatusPreconditionFailed:
							conflicts.Add(1)
						default:
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			final, _ := strconv.Atoi(string(mustGet(t, c, "counter", "n")))
			t.Logf("%d successful increments, %d lost races retried, final value %d", successes.Load(), conflicts.Load(), final)
			if int64(final) != successes.Load() || final != clients*each {
				t.Fatalf("final value %d, successful PUTs %d: an update was lost", final, successes.Load())
			}
			if conflicts.Load() == 0 {
				t.Fatal("no client ever lost a race: the test did not exercise contention")
			}
		})
	}
}

// TestABAGenerations shows why generations exist: two writes of equal bytes share an ETag, so an
// If-Match taken before them still matches after them, while the generation does not.
func TestABAGenerations(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.root()
	ctx := context.Background()
	mustCreateBucket(t, c, "aba")
	mustPut(t, c, "aba", "k", []byte("A"))
	seen, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("aba"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, seen.Body)
	gen := generationOf(t, seen)
	mustPut(t, c, "aba", "k", []byte("B")) // another client changes the object...
	mustPut(t, c, "aba", "k", []byte("A")) // ...and back: same bytes, same ETag
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("aba"), Key: aws.String("k"), Body: bytes.NewReader([]byte("C")),
		IfMatch: seen.ETag}, withHeader("x-weir-if-generation-match", strconv.FormatUint(gen, 10)))
	if httpStatus(err) != http.StatusPreconditionFailed {
		t.Fatalf("generation check after A→B→A: %v (want 412)", err)
	}
	// The ETag alone cannot tell: If-Match still matches after the two intervening writes.
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("aba"), Key: aws.String("k"), Body: bytes.NewReader([]byte("C")), IfMatch: seen.ETag}); err != nil {
		t.Fatalf("If-Match after A→B→A: %v", err)
	}
}
