package gateway_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/weirproject/weir/gateway/internal/checksum"
)

func hmacSum(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func hexSHA(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// streamingPut sends data as an aws-chunked PUT in the given x-amz-content-sha256 mode, signing
// chunks (and the trailer) the way the Java SDK and boto do. corrupt flips a byte of the second
// chunk after it was signed.
func streamingPut(t *testing.T, ts *testServer, key, mode string, data []byte, crc string, corrupt bool) *http.Response {
	t.Helper()
	signed := !strings.HasPrefix(mode, "STREAMING-UNSIGNED")
	withTrailer := strings.HasSuffix(mode, "-TRAILER")
	now := time.Now().UTC()
	amzDate := now.Format("20060102T150405Z")
	scope := now.Format("20060102") + "/us-east-1/s3/aws4_request"
	key4 := hmacSum(hmacSum(hmacSum(hmacSum([]byte("AWS4"+rootSK), now.Format("20060102")), "us-east-1"), "s3"), "aws4_request")

	var enc bytes.Buffer
	prev := ""
	chunkSig := func(p []byte) string {
		toSign := "AWS4-HMAC-SHA256-PAYLOAD\n" + amzDate + "\n" + scope + "\n" + prev + "\n" + hexSHA(nil) + "\n" + hexSHA(p)
		prev = hex.EncodeToString(hmacSum(key4, toSign))
		return prev
	}
	req, _ := http.NewRequest(http.MethodPut, ts.URL+"/stream/"+key, nil)
	req.Header.Set("X-Amz-Content-Sha256", mode)
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("X-Amz-Decoded-Content-Length", fmt.Sprint(len(data)))
	if withTrailer {
		req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
	}
	// The seed signature covers the headers; the body is framed after signing.
	if err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).SignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: rootAK, SecretAccessKey: rootSK}, req, mode, "s3", "us-east-1", now); err != nil {
		t.Fatal(err)
	}
	auth := req.Header.Get("Authorization")
	prev = auth[strings.Index(auth, "Signature=")+len("Signature="):]
	const chunk = 64 << 10
	for off, i := 0, 0; ; off, i = off+chunk, i+1 {
		end := min(off+chunk, len(data))
		part := bytes.Clone(data[min(off, len(data)):end])
		if signed {
			fmt.Fprintf(&enc, "%x;chunk-signature=%s\r\n", len(part), chunkSig(part))
		} else {
			fmt.Fprintf(&enc, "%x\r\n", len(part))
		}
		if len(part) == 0 {
			break
		}
		if corrupt && i == 1 {
			part[0] ^= 0xff
		}
		enc.Write(part)
		enc.WriteString("\r\n")
	}
	if withTrailer {
		line := "x-amz-checksum-crc32:" + crc
		fmt.Fprintf(&enc, "%s\r\n", line)
		if signed {
			toSign := "AWS4-HMAC-SHA256-TRAILER\n" + amzDate + "\n" + scope + "\n" + prev + "\n" + hexSHA([]byte(line+"\n"))
			fmt.Fprintf(&enc, "x-amz-trailer-signature:%s\r\n", hex.EncodeToString(hmacSum(key4, toSign)))
		}
	}
	enc.WriteString("\r\n")
	req.Body = http.NoBody
	req.ContentLength = int64(enc.Len())
	req.Body = nopCloser{bytes.NewReader(enc.Bytes())}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// TestAWSChunkedUploads sends every aws-chunked variant to the real server: good bodies are
// stored with their checksum; a forged chunk or a wrong trailer checksum is refused and stores
// nothing.
func TestAWSChunkedUploads(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.root()
	mustCreateBucket(t, c, "stream")
	data := randomBytes(300_000, 11)
	crc := checksum.Sum("CRC32", data)
	for _, mode := range []string{"STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"} {
		resp := streamingPut(t, ts, "ok-"+mode, mode, data, crc, false)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", mode, resp.StatusCode)
		}
		out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("stream"), Key: aws.String("ok-" + mode), ChecksumMode: types.ChecksumModeEnabled})
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, out.Body); !bytes.Equal(got, data) {
			t.Fatalf("%s: stored %d bytes, want %d", mode, len(got), len(data))
		}
		if strings.HasSuffix(mode, "TRAILER") && aws.ToString(out.ChecksumCRC32) != crc {
			t.Fatalf("%s: stored CRC32 %q, want %q", mode, aws.ToString(out.ChecksumCRC32), crc)
		}
	}
	bad := []struct {
		name, mode, crc string
		corrupt         bool
		status          int
	}{
		{"forged chunk", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", crc, true, http.StatusForbidden},
		{"forged chunk with trailer", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", crc, true, http.StatusForbidden},
		{"wrong trailer checksum", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", checksum.Sum("CRC32", []byte("other")), false, http.StatusBadRequest},
		{"corrupted unsigned body", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", crc, true, http.StatusBadRequest},
	}
	for _, b := range bad {
		resp := streamingPut(t, ts, "bad", b.mode, data, b.crc, b.corrupt)
		if resp.StatusCode != b.status {
			t.Fatalf("%s: status %d, want %d", b.name, resp.StatusCode, b.status)
		}
		if _, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("stream"), Key: aws.String("bad")}); httpStatus(err) != http.StatusNotFound {
			t.Fatalf("%s: refused upload is visible: %v", b.name, err)
		}
	}
}

// TestLimits: oversized XML bodies and user metadata get their S3 errors and change nothing.
func TestLimits(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.root()
	mustCreateBucket(t, c, "limits")
	now := time.Now()
	huge := []byte("<Delete>" + strings.Repeat("<Object><Key>k</Key></Object>", 40000) + "</Delete>")
	expectError(t, ts, ts.signed(t, http.MethodPost, "/limits?delete", huge, nil, "", now), 400, "MaxMessageLengthExceeded")
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("limits"), Key: aws.String("k"), Body: strings.NewReader("x"),
		Metadata: map[string]string{"big": strings.Repeat("m", 2100)}})
	if apiCode(err) != "MetadataTooLarge" || httpStatus(err) != http.StatusBadRequest {
		t.Fatalf("2 KiB of metadata: %v", err)
	}
	l, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("limits")})
	if err != nil || len(l.Contents) != 0 {
		t.Fatalf("refused requests left objects: %+v %v", l.Contents, err)
	}
}
