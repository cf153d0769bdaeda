package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// benchOverwrite overwrites 4 KiB objects on distinct keys through the real server, with or
// without If-Match, 8 clients per CPU. Every object holds the same bytes, so its ETag is known.
func benchOverwrite(b *testing.B, conditional bool) {
	ts := startServer(b, serverOptions{})
	c := ts.root()
	mustCreateBucket(b, c, "bench")
	body := randomBytes(4<<10, 1)
	etag := quotedMD5(body)
	const keys = 1024
	for i := 0; i < keys; i++ {
		mustPut(b, c, "bench", fmt.Sprintf("k%05d", i), body)
	}
	var n atomic.Int64
	b.SetBytes(int64(len(body)))
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			in := &s3.PutObjectInput{Bucket: aws.String("bench"), Key: aws.String(fmt.Sprintf("k%05d", n.Add(1)%keys)), Body: bytes.NewReader(body)}
			if conditional {
				in.IfMatch = aws.String(etag)
			}
			if _, err := c.PutObject(context.Background(), in); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkPut4KiB(b *testing.B) {
	b.Run("unconditional", func(b *testing.B) { benchOverwrite(b, false) })
	b.Run("if-match", func(b *testing.B) { benchOverwrite(b, true) })
}

// BenchmarkHotKeyIfMatch: 16 writers on ONE key, each read-modify-write with If-Match (each
// writing bytes of its own, so no two versions share an ETag). Reports the throughput of
// attempts, of winning writes, and the share that win.
func BenchmarkHotKeyIfMatch(b *testing.B) {
	ts := startServer(b, serverOptions{})
	c := ts.root()
	mustCreateBucket(b, c, "hot")
	mustPut(b, c, "hot", "k", []byte("0"))
	var wins, losses, seq atomic.Int64
	b.SetParallelism(8) // 16 writers on 2 CPUs
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("hot"), Key: aws.String("k")})
			if err != nil {
				b.Error(err)
				return
			}
			_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("hot"), Key: aws.String("k"), Body: bytes.NewReader([]byte(fmt.Sprint(seq.Add(1)))), IfMatch: head.ETag})
			switch {
			case err == nil:
				wins.Add(1)
			case httpStatus(err) == http.StatusPreconditionFailed:
				losses.Add(1)
			default:
				b.Error(err)
				return
			}
		}
	})
	total := wins.Load() + losses.Load()
	if total > 0 {
		b.ReportMetric(float64(wins.Load())/float64(total), "win-share")
		b.ReportMetric(float64(wins.Load())/b.Elapsed().Seconds(), "wins/s")
	}
}

// BenchmarkPutLatency4KiB: one client PUTs 4 KiB objects one after another through the real
// server (fsync on commit), with the built-in policy and with an example policy loaded. It
// reports the median latency (p50-ns): the yardstick for the decision step's cost
// (policies.BenchmarkDecide), which must stay under a tenth of it.
func BenchmarkPutLatency4KiB(b *testing.B) {
	for _, policy := range []string{"built-in", "tenant-isolation", "upload-limits"} {
		b.Run(policy, func(b *testing.B) {
			opts := serverOptions{}
			if policy != "built-in" {
				opts.Policy = examplePolicy(b, policy)
			}
			ts := startServer(b, opts)
			c := ts.root()
			mustCreateBucket(b, c, "bench")
			body := randomBytes(4<<10, 1)
			b.SetBytes(int64(len(body)))
			var took []time.Duration
			i := 0
			for b.Loop() {
				i++
				start := time.Now()
				if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("bench"),
					Key: aws.String(fmt.Sprintf("k%05d", i%1024)), Body: bytes.NewReader(body)}); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns")
		})
	}
}
