package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/weirproject/weir/internal/backendtest"
)

// TestDatabaseFailover: the gateway is given a primary and its synchronous standby
// (postgres://h1:p1,h2:p2/db?target_session_attrs=read-write). Under a load of 8 writing
// clients the primary's machine dies (SIGKILL of the postmaster and its backends) and the standby
// is promoted: the gateway resumes on the new primary without a restart, requests refused
// meanwhile are 503, and every write acknowledged before, during or after reads back.
func TestDatabaseFailover(t *testing.T) {
	primary, standby := backendtest.PostgresPair(t)
	store := backendtest.MultiHostURL(t, backendtest.PostgresDatabase(t, primary.URL), primary, standby)
	ts := startServer(t, serverOptions{Store: store})
	ctx := context.Background()
	if _, err := ts.root().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("failover")}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[string]string{}
	var refused, ackedSincePromotion atomic.Int64
	var promoted atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ts.root()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("w%d/%05d", w, i)
				body := strings.Repeat(key, 1+i%100)
				_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("failover"), Key: aws.String(key), Body: strings.NewReader(body)})
				if err != nil {
					if httpStatus(err) != http.StatusServiceUnavailable {
						t.Errorf("a PUT refused during the failover: %v", err)
						return
					}
					refused.Add(1)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				mu.Lock()
				acked[key] = body
				mu.Unlock()
				if promoted.Load() {
					ackedSincePromotion.Add(1)
				}
			}
		}()
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	time.Sleep(time.Second)
	if err := primary.KillPostmaster(); err != nil {
		t.Fatal(err)
	}
	if err := standby.Promote(); err != nil {
		t.Fatal(err)
	}
	promoted.Store(true)
	for deadline := time.Now().Add(30 * time.Second); ackedSincePromotion.Load() < 8; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) || t.Failed() {
			t.Fatalf("%d writes acknowledged in the 30 s after the standby's promotion", ackedSincePromotion.Load())
		}
	}
	close(stop)
	wg.Wait()
	c := ts.root()
	for key, want := range acked {
		if got := string(mustGet(t, c, "failover", key)); got != want {
			t.Fatalf("acknowledged %s reads back %d bytes, want %d", key, len(got), len(want))
		}
	}
	t.Logf("%d writes acknowledged, %d refused with 503 during the failover", len(acked), refused.Load())
}
