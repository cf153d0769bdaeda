package sigv4

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Limits of the aws-chunked decoder: a header line longer than the reader's buffer or a chunk
// larger than maxChunk is malformed.
const (
	maxChunk    = 16 << 20
	readerSize  = 64 << 10
	maxTrailers = 16
)

// Payload is a request's decoded body. Read it to EOF: integrity failures (SHA-256, chunk or
// trailer signatures, framing, length) are reported by Read in place of io.EOF.
type Payload struct {
	r       io.Reader
	size    int64
	chunked *chunkedReader
}

func (p *Payload) Read(b []byte) (int, error) { return p.r.Read(b) }

// Size is the decoded size the client declared, or -1 when unknown.
func (p *Payload) Size() int64 { return p.size }

// Trailers are the aws-chunked trailers (canonical names), valid after EOF; nil otherwise.
func (p *Payload) Trailers() http.Header {
	if p.chunked == nil {
		return nil
	}
	return p.chunked.trailers
}

// Body returns r's decoded payload according to the verified x-amz-content-sha256 mode.
func (a *Auth) Body(r *http.Request) (*Payload, error) {
	mode := a.PayloadMode
	switch mode {
	case unsignedPayload:
		return &Payload{r: r.Body, size: r.ContentLength}, nil
	case StreamingSigned, StreamingSignedTrailer, StreamingUnsignedTrailer:
		dl := r.Header.Get("X-Amz-Decoded-Content-Length")
		if dl == "" {
			return nil, fmt.Errorf("%w: aws-chunked bodies need x-amz-decoded-content-length", ErrMissingContentLength)
		}
		n, err := strconv.ParseInt(dl, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: x-amz-decoded-content-length %q", ErrMalformedChunk, dl)
		}
		c := newChunkedReader(r.Body, n)
		if mode != StreamingUnsignedTrailer {
			c.signed = true
			c.key, c.amzDate, c.scope, c.prevSig = a.key, a.amzDate, a.scope, a.signature
		}
		c.trailer = mode != StreamingSigned
		return &Payload{r: c, size: n, chunked: c}, nil
	}
	if len(mode) == 64 && isHex(mode) {
		want, _ := hex.DecodeString(mode)
		return &Payload{r: &sha256Reader{r: r.Body, h: sha256.New(), want: want}, size: r.ContentLength}, nil
	}
	return nil, fmt.Errorf("%w: unsupported x-amz-content-sha256 value %q", ErrContentSHA256Mismatch, mode)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

type sha256Reader struct {
	r    io.Reader
	h    hash.Hash
	want []byte
}

func (s *sha256Reader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.h.Write(p[:n])
	if err == io.EOF && !bytes.Equal(s.h.Sum(nil), s.want) {
		return n, fmt.Errorf("%w: the body's SHA-256 is %x", ErrContentSHA256Mismatch, s.h.Sum(nil))
	}
	return n, err
}

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readerSize) }}
	chunkPool  = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}
)

// chunkedReader decodes an aws-chunked body. Unsigned chunks stream straight through; a signed
// chunk is buffered and verified before any of its bytes are released, so a forged chunk never
// reaches the store.
type chunkedReader struct {
	br       *bufio.Reader
	declared int64
	decoded  int64

	signed  bool
	trailer bool
	key     []byte
	amzDate string
	scope   string
	prevSig string

	remaining int64   // unsigned: bytes left in the current chunk
	buf       *[]byte // signed: the verified chunk being served
	pos       int
	done      bool
	err       error
	trailers  http.Header
}

func newChunkedReader(body io.Reader, declared int64) *chunkedReader {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(body)
	return &chunkedReader{br: br, declared: declared}
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	for {
		if c.err != nil {
			return 0, c.err
		}
		if c.buf != nil && c.pos < len(*c.buf) {
			n := copy(p, (*c.buf)[c.pos:])
			c.pos += n
			return n, nil
		}
		if c.remaining > 0 {
			if int64(len(p)) > c.remaining {
				p = p[:c.remaining]
			}
			n, err := c.br.Read(p)
			c.remaining -= int64(n)
			if err == io.EOF {
				err = fmt.Errorf("%w: the body ended inside a chunk", ErrIncompleteBody)
			}
			if err != nil {
				c.fail(err)
				if n > 0 {
					return n, nil
				}
				return 0, c.err
			}
			if c.remaining == 0 {
				if err := c.expectCRLF(); err != nil {
					c.fail(err)
				}
			}
			return n, nil
		}
		if c.done {
			return 0, io.EOF
		}
		if err := c.next(); err != nil {
			c.fail(err)
		}
	}
}

func (c *chunkedReader) fail(err error) {
	if c.err == nil {
		c.err = err
		c.release()
	}
}

func (c *chunkedReader) release() {
	if c.buf != nil {
		*c.buf = (*c.buf)[:0]
		chunkPool.Put(c.buf)
		c.buf = nil
	}
	if c.br != nil {
		c.br.Reset(nil)
		readerPool.Put(c.br)
		c.br = nil
	}
}

func (c *chunkedReader) line() (string, error) {
	l, err := c.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return "", fmt.Errorf("%w: a chunk header or trailer line is too long", ErrMalformedChunk)
	}
	if err == io.EOF {
		if len(l) == 0 {
			return "", io.EOF
		}
		err = nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(l), "\r\n"), nil
}

func (c *chunkedReader) expectCRLF() error {
	l, err := c.line()
	if err != nil || l != "" {
		return fmt.Errorf("%w: chunk data not followed by CRLF", ErrMalformedChunk)
	}
	return nil
}

// next reads the next chunk header and, for signed chunks, the chunk itself.
func (c *chunkedReader) next() error {
	hdr, err := c.line()
	if err == io.EOF {
		return fmt.Errorf("%w: the body ended before the final chunk", ErrIncompleteBody)
	}
	if err != nil {
		return err
	}
	sizeHex, ext, _ := strings.Cut(hdr, ";")
	size, err := strconv.ParseInt(strings.TrimSpace(sizeHex), 16, 64)
	if err != nil || size < 0 || size > maxChunk {
		return fmt.Errorf("%w: bad chunk size %q", ErrMalformedChunk, sizeHex)
	}
	if c.decoded+size > c.declared {
		return fmt.Errorf("%w: the chunks carry more than the declared %d bytes", ErrIncompleteBody, c.declared)
	}
	var sig string
	if c.signed {
		s, ok := strings.CutPrefix(strings.TrimSpace(ext), "chunk-signature=")
		if !ok || len(s) != 64 {
			return fmt.Errorf("%w: chunk header %q lacks chunk-signature", ErrMalformedChunk, hdr)
		}
		sig = s
	}
	if size == 0 {
		if c.signed {
			if err := c.verifyChunk(nil, sig); err != nil {
				return err
			}
		}
		return c.finish()
	}
	c.decoded += size
	if !c.signed {
		c.remaining = size
		return nil
	}
	if c.buf == nil {
		c.buf = chunkPool.Get().(*[]byte)
	}
	b, err := readChunk(c.br, (*c.buf)[:0], int(size))
	*c.buf, c.pos = b, 0
	if err != nil {
		return err
	}
	if err := c.verifyChunk(b, sig); err != nil {
		return err
	}
	return c.expectCRLF()
}

// readChunk reads a signed chunk of size bytes into b, growing b with the data received rather
// than to the size the chunk header declares: a client that declares a large chunk and stalls
// costs the server what it sent, not what it announced.
func readChunk(r io.Reader, b []byte, size int) ([]byte, error) {
	for len(b) < size {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grows the capacity geometrically
		}
		n, err := r.Read(b[len(b):min(cap(b), size)])
		b = b[:len(b)+n]
		if err != nil && len(b) < size {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return b, fmt.Errorf("%w: the body ended inside a chunk", ErrIncompleteBody)
			}
			return b, err
		}
	}
	return b, nil
}

func (c *chunkedReader) verifyChunk(data []byte, sig string) error {
	sum := sha256.Sum256(data)
	toSign := "AWS4-HMAC-SHA256-PAYLOAD\n" + c.amzDate + "\n" + c.scope + "\n" + c.prevSig + "\n" + emptySHA256 + "\n" + hex.EncodeToString(sum[:])
	want := hex.EncodeToString(hmacSHA256(c.key, []byte(toSign)))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return &SignatureError{err: fmt.Errorf("%w: chunk signature", ErrSignatureDoesNotMatch), Reason: "chunk signature", StringToSign: toSign}
	}
	c.prevSig = sig
	return nil
}

// finish reads what follows the final chunk: trailers (verified when signed) or the closing CRLF.
func (c *chunkedReader) finish() error {
	if c.decoded != c.declared {
		return fmt.Errorf("%w: got %d of %d declared bytes", ErrIncompleteBody, c.decoded, c.declared)
	}
	c.trailers = http.Header{}
	var canonical strings.Builder
	var trailerSig string
	for i := 0; ; i++ {
		l, err := c.line()
		if err == io.EOF {
			break // clients may close without the final CRLF
		}
		if err != nil {
			return err
		}
		l = strings.TrimSpace(l)
		if l == "" {
			// minio-go ends its trailer lines with a bare LF and puts a CRLF before the trailer
			// signature: a blank line after the trailers of a signed body is not the end until
			// the signature has come.
			if c.signed && c.trailer && trailerSig == "" && len(c.trailers) > 0 && i <= maxTrailers {
				continue
			}
			break
		}
		if !c.trailer || i >= maxTrailers {
			return fmt.Errorf("%w: unexpected data after the final chunk", ErrMalformedChunk)
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			return fmt.Errorf("%w: trailer line %q", ErrMalformedTrailer, l)
		}
		name, value = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value)
		if name == "x-amz-trailer-signature" {
			trailerSig = value
			continue
		}
		c.trailers.Set(name, value)
		canonical.WriteString(name + ":" + value + "\n")
	}
	if c.signed && c.trailer {
		sum := sha256.Sum256([]byte(canonical.String()))
		toSign := "AWS4-HMAC-SHA256-TRAILER\n" + c.amzDate + "\n" + c.scope + "\n" + c.prevSig + "\n" + hex.EncodeToString(sum[:])
		want := hex.EncodeToString(hmacSHA256(c.key, []byte(toSign)))
		if !hmac.Equal([]byte(want), []byte(trailerSig)) {
			return &SignatureError{err: fmt.Errorf("%w: trailer signature", ErrSignatureDoesNotMatch), Reason: "trailer signature", StringToSign: toSign}
		}
	}
	c.done = true
	c.release()
	return nil
}
