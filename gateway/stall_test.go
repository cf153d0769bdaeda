package gateway_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Finding 3, memory: a signed aws-chunked PUT to the real server that declares a 1,000,000-byte
// chunk and stalls after 1,000 bytes costs about what it sent, not what it declared; then the
// idle timeout cuts it.
func TestStalledChunkOnTheServer(t *testing.T) {
	ts := startServer(t, serverOptions{IdleBodyTimeout: 2 * time.Second})
	mustCreateBucket(t, ts.root(), "stall")
	addr := strings.TrimPrefix(ts.URL, "http://")
	req, _ := http.NewRequest(http.MethodPut, ts.URL+"/stall/k", nil)
	req.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("X-Amz-Decoded-Content-Length", "1000000")
	req.ContentLength = 1000200
	if err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).SignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: rootAK, SecretAccessKey: rootSK}, req, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var head strings.Builder
	fmt.Fprintf(&head, "PUT /stall/k HTTP/1.1\r\nHost: %s\r\nContent-Length: 1000200\r\n", addr)
	for k, vs := range req.Header {
		fmt.Fprintf(&head, "%s: %s\r\n", k, vs[0])
	}
	head.WriteString("\r\n")
	fmt.Fprintf(&head, "%x;chunk-signature=%s\r\n", 1000000, strings.Repeat("0", 64))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	conn.Write([]byte(head.String()))
	conn.Write(make([]byte, 1000))
	time.Sleep(500 * time.Millisecond) // the decoder now waits for the rest of the chunk
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 600_000 {
		t.Fatalf("a stalled 1,000,000-byte chunk with 1,000 bytes sent made the server allocate %d bytes", grew)
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 4096)
	n, _ := conn.Read(buf)
	if !strings.Contains(string(buf[:n]), "RequestTimeout") {
		t.Fatalf("the stalled chunk was not cut by the idle timeout: %q", buf[:n])
	}
}
