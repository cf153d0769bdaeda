package checksum

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func b64u32(v uint32) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, v))
}
func b64u64(v uint64) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint64(nil, v))
}

// The check values of each CRC's catalogue entry ("123456789").
func TestKnownVectors(t *testing.T) {
	for alg, want := range map[string]string{
		"CRC32":     b64u32(0xcbf43926),
		"CRC32C":    b64u32(0xe3069283),
		"CRC64NVME": b64u64(0xae8b14860a799888),
		"SHA1":      "98O8HYCOBHMq32eZZczDTKeuNEE=",
		"SHA256":    "FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU=",
	} {
		if got := Sum(alg, []byte("123456789")); got != want {
			t.Errorf("%s: %s, want %s", alg, got, want)
		}
	}
}

func verify(t *testing.T, h http.Header, body string, trailers http.Header) (map[string]string, error) {
	t.Helper()
	v, err := FromRequest(h)
	if err != nil {
		return nil, err
	}
	if v == nil {
		t.Fatal("no verifier")
	}
	io.ReadAll(v.Wrap(strings.NewReader(body)))
	return v.Finish(trailers)
}

func TestHeaderAndTrailer(t *testing.T) {
	good := Sum("CRC32", []byte("hello"))
	if m, err := verify(t, http.Header{"X-Amz-Checksum-Crc32": {good}}, "hello", nil); err != nil || m["CRC32"] != good {
		t.Fatalf("header: %v %v", m, err)
	}
	if _, err := verify(t, http.Header{"X-Amz-Checksum-Crc32": {good}}, "jello", nil); !errors.Is(err, ErrBadDigest) {
		t.Fatalf("mismatch: %v", err)
	}
	tr := http.Header{"X-Amz-Trailer": {"x-amz-checksum-crc32c"}}
	want := Sum("CRC32C", []byte("hello"))
	if m, err := verify(t, tr, "hello", http.Header{"X-Amz-Checksum-Crc32c": {want}}); err != nil || m["CRC32C"] != want {
		t.Fatalf("trailer: %v %v", m, err)
	}
	if _, err := verify(t, tr, "hello", http.Header{}); !errors.Is(err, ErrMalformedTrailer) {
		t.Fatalf("missing trailer: %v", err)
	}
	for name, h := range map[string]http.Header{
		"two headers":     {"X-Amz-Checksum-Crc32": {good}, "X-Amz-Checksum-Sha1": {Sum("SHA1", nil)}},
		"sdk without one": {"X-Amz-Sdk-Checksum-Algorithm": {"CRC32"}},
		"unknown trailer": {"X-Amz-Trailer": {"x-amz-checksum-md4"}},
	} {
		if _, err := FromRequest(h); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := FromRequest(http.Header{"X-Amz-Checksum-Crc32": {"not base64"}}); !errors.Is(err, ErrInvalidDigest) {
		t.Errorf("malformed value: %v", err)
	}
	if v, err := FromRequest(http.Header{}); v != nil || err != nil {
		t.Errorf("no checksum: %v %v", v, err)
	}
	if _, err := ParseContentMD5("abc"); !errors.Is(err, ErrInvalidDigest) {
		t.Errorf("Content-MD5: %v", err)
	}
}
