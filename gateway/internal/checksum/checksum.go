// Package checksum computes and verifies the S3 flexible checksums (CRC32, CRC32C, CRC64NVME,
// SHA1, SHA256) over an object's decoded bytes, and parses Content-MD5.
//
// It owns the algorithms, their header names and the rules for which checksum a request declares
// (a header, or an aws-chunked trailer announced by x-amz-trailer). It never reads request bodies
// itself beyond the reader it wraps, and knows nothing of signatures or S3 XML.
package checksum

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"strings"
)

// Errors, wrapped with context; test them with errors.Is.
var (
	ErrBadDigest        = errors.New("checksum mismatch")
	ErrInvalidDigest    = errors.New("invalid digest")
	ErrInvalidRequest   = errors.New("invalid checksum request")
	ErrMalformedTrailer = errors.New("declared checksum trailer missing")
)

// Algorithms weir accepts, in S3's names.
var Algorithms = []string{"CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"}

var crc64NVMETable = crc64.MakeTable(0x9a6c9329ac4bc9b5)

func newHash(alg string) hash.Hash {
	switch alg {
	case "CRC32":
		return crc32.NewIEEE()
	case "CRC32C":
		return crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case "CRC64NVME":
		return crc64.New(crc64NVMETable)
	case "SHA1":
		return sha1.New()
	case "SHA256":
		return sha256.New()
	}
	return nil
}

func digestSize(alg string) int {
	switch alg {
	case "CRC32", "CRC32C":
		return 4
	case "CRC64NVME":
		return 8
	case "SHA1":
		return 20
	case "SHA256":
		return 32
	}
	return 0
}

// HeaderName returns the header that carries alg's value, e.g. "x-amz-checksum-crc32".
func HeaderName(alg string) string { return "x-amz-checksum-" + strings.ToLower(alg) }

// Sum returns the base64 checksum of data with alg (for tests and tools).
func Sum(alg string, data []byte) string {
	h := newHash(alg)
	if h == nil {
		return ""
	}
	h.Write(data)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// Verifier computes one algorithm's checksum over what is read through it and checks it against
// the value the client declared.
type Verifier struct {
	alg      string
	expected string // from the header; "" when it comes in a trailer
	trailer  string // canonical trailer name when the value comes in a trailer
	h        hash.Hash
}

// FromRequest returns the Verifier a request asks for, or nil when it carries no checksum.
func FromRequest(h http.Header) (*Verifier, error) {
	var v *Verifier
	for _, alg := range Algorithms {
		val := h.Get(HeaderName(alg))
		if val == "" {
			continue
		}
		if v != nil {
			return nil, fmt.Errorf("%w: expecting a single x-amz-checksum- header, got %s and %s", ErrInvalidRequest, v.alg, alg)
		}
		if err := validValue(alg, val); err != nil {
			return nil, err
		}
		v = &Verifier{alg: alg, expected: val}
	}
	if t := h.Get("x-amz-trailer"); t != "" {
		name := strings.ToLower(strings.TrimSpace(t))
		alg, ok := strings.CutPrefix(name, "x-amz-checksum-")
		alg = strings.ToUpper(alg)
		if !ok || newHash(alg) == nil {
			return nil, fmt.Errorf("%w: unsupported trailer %q", ErrInvalidRequest, t)
		}
		if v == nil { // a value sent as a header wins over an announced trailer (Java SDK quirk)
			v = &Verifier{alg: alg, trailer: http.CanonicalHeaderKey(name)}
		}
	}
	if sdk := strings.ToUpper(h.Get("x-amz-sdk-checksum-algorithm")); sdk != "" {
		if newHash(sdk) == nil {
			return nil, fmt.Errorf("%w: unsupported checksum algorithm %q", ErrInvalidRequest, sdk)
		}
		if v == nil || v.alg != sdk {
			return nil, fmt.Errorf("%w: x-amz-sdk-checksum-algorithm %s without a matching x-amz-checksum-%s header or trailer", ErrInvalidRequest, sdk, strings.ToLower(sdk))
		}
	}
	if v != nil {
		v.h = newHash(v.alg)
	}
	return v, nil
}

func validValue(alg, val string) error {
	raw, err := base64.StdEncoding.DecodeString(val)
	if err != nil || len(raw) != digestSize(alg) {
		return fmt.Errorf("%w: the %s checksum %q is not the base64 of %d bytes", ErrInvalidDigest, alg, val, digestSize(alg))
	}
	return nil
}

// Algorithm is the verifier's algorithm name.
func (v *Verifier) Algorithm() string { return v.alg }

// Wrap returns a reader that hashes everything read through it.
func (v *Verifier) Wrap(r io.Reader) io.Reader { return &hashingReader{r: r, h: v.h} }

type hashingReader struct {
	r io.Reader
	h hash.Hash
}

func (hr *hashingReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	hr.h.Write(p[:n])
	return n, err
}

// Finish checks the computed checksum, after EOF, against the declared value (from the header,
// or from trailers) and returns it as {algorithm: base64}.
func (v *Verifier) Finish(trailers http.Header) (map[string]string, error) {
	want := v.expected
	if want == "" {
		want = trailers.Get(v.trailer)
		if want == "" {
			return nil, fmt.Errorf("%w: the request announced trailer %s but did not send it", ErrMalformedTrailer, v.trailer)
		}
		if err := validValue(v.alg, want); err != nil {
			return nil, err
		}
	}
	got := base64.StdEncoding.EncodeToString(v.h.Sum(nil))
	if got != want {
		return nil, fmt.Errorf("%w: the %s you specified (%s) did not match the calculated checksum (%s)", ErrBadDigest, v.alg, want, got)
	}
	return map[string]string{v.alg: got}, nil
}

// ParseContentMD5 decodes a Content-MD5 header.
func ParseContentMD5(h string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(h)
	if err != nil || len(b) != 16 {
		return nil, fmt.Errorf("%w: the Content-MD5 you specified (%q) is not the base64 of 16 bytes", ErrInvalidDigest, h)
	}
	return b, nil
}
