package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

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
