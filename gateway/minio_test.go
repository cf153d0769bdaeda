package gateway_test

import (
	"bytes"
	"context"
	"io"
	"math/rand"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// TestMinioGoTrailingChecksums drives weir over plain HTTP with minio-go and trailing checksums
// (the way mc --checksum uploads): a single PutObject and a multipart upload per algorithm, each
// read back byte for byte. minio-go ends its trailer lines with a bare LF and puts a CRLF before
// the trailer signature; weir refused every such upload with 403 before.
func TestMinioGoTrailingChecksums(t *testing.T) {
	ts := startServer(t, serverOptions{MinPartSize: 5 << 20})
	mc, err := minio.New(strings.TrimPrefix(ts.URL, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(rootAK, rootSK, ""), Secure: false, Region: "us-east-1", TrailingHeaders: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := mc.MakeBucket(ctx, "minio", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	small := []byte("hello from minio-go")
	big := make([]byte, 11<<20) // three parts of 5 MiB, 5 MiB and 1 MiB
	rand.New(rand.NewSource(7)).Read(big)
	for _, alg := range []minio.ChecksumType{minio.ChecksumCRC32, minio.ChecksumCRC32C, minio.ChecksumSHA256} {
		for _, data := range [][]byte{small, big} {
			key := alg.String() + "/" + map[bool]string{true: "big", false: "small"}[len(data) == len(big)]
			info, err := mc.PutObject(ctx, "minio", key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
				Checksum: alg, PartSize: 5 << 20, DisableMultipart: len(data) == len(small),
			})
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			if info.Size != int64(len(data)) {
				t.Fatalf("%s: stored %d bytes, want %d", key, info.Size, len(data))
			}
			obj, err := mc.GetObject(ctx, "minio", key, minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(obj)
			obj.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s: read back %d bytes (%v), want the %d written", key, len(got), err, len(data))
			}
		}
	}
}
