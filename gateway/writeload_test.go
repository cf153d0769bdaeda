package gateway_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// writeLoad is 8 clients writing new keys through one gateway while a test breaks what the
// gateway depends on. Each remembers what was acknowledged; a refusal the test expects (retry)
// is counted and retried after a pause, any other error fails the test.
type writeLoad struct {
	ts     *testServer
	bucket string
	mu     sync.Mutex
	acked  map[string]string
	// refused counts the expected refusals; sinceMark the acknowledgements after mark.
	refused, sinceMark atomic.Int64
	marked             atomic.Bool
	stop               chan struct{}
	halted             sync.Once
	wg                 sync.WaitGroup
}

// startWriteLoad starts the clients; expected reports whether a refusal is one the test allows
// (and says why not when it is not). The load stops when the test ends, if not before.
func startWriteLoad(t *testing.T, ts *testServer, bucket string, expected func(error) bool) *writeLoad {
	l := &writeLoad{ts: ts, bucket: bucket, acked: map[string]string{}, stop: make(chan struct{})}
	ctx := context.Background()
	for w := 0; w < 8; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := ts.root()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				key := fmt.Sprintf("w%d/%05d", w, i)
				body := strings.Repeat(key, 1+i%100)
				_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)})
				if err != nil {
					if !expected(err) {
						t.Errorf("a PUT refused under load: %v", err)
						return
					}
					l.refused.Add(1)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				l.mu.Lock()
				l.acked[key] = body
				l.mu.Unlock()
				if l.marked.Load() {
					l.sinceMark.Add(1)
				}
			}
		}()
	}
	t.Cleanup(l.halt)
	return l
}

// mark starts counting acknowledgements anew (the dependency is back).
func (l *writeLoad) mark() { l.marked.Store(true) }

// awaitRecovery waits until 8 writes are acknowledged after mark, failing the test if that
// takes longer than within.
func (l *writeLoad) awaitRecovery(t *testing.T, within time.Duration, what string) {
	t.Helper()
	for deadline := time.Now().Add(within); l.sinceMark.Load() < 8; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) || t.Failed() {
			t.Fatalf("%d writes acknowledged in the %v after %s", l.sinceMark.Load(), within, what)
		}
	}
}

// halt stops the clients and waits for them.
func (l *writeLoad) halt() {
	l.halted.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// verify halts the load and reads back every acknowledged write whole.
func (l *writeLoad) verify(t *testing.T) {
	t.Helper()
	l.halt()
	c := l.ts.root()
	for key, want := range l.acked {
		if got := string(mustGet(t, c, l.bucket, key)); got != want {
			t.Fatalf("acknowledged %s reads back %d bytes, want %d", key, len(got), len(want))
		}
	}
	t.Logf("%d writes acknowledged, %d refused and retried", len(l.acked), l.refused.Load())
}
