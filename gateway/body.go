package gateway

import (
	"bytes"
	"crypto/md5"
	"hash"
	"io"

	"github.com/weirproject/weir/engine"
	"github.com/weirproject/weir/gateway/internal/checksum"
	"github.com/weirproject/weir/gateway/internal/sigv4"
)

// body is a request's decoded payload: aws-chunked framing removed, signatures verified as it
// is read, and the flexible checksum (header or trailer) computed over the decoded bytes.
type body struct {
	payload *sigv4.Payload
	cs      *checksum.Verifier
	r       io.Reader
	md5     []byte // Content-MD5, if sent
}

func (rq *request) openBody() (*body, error) {
	p, err := rq.auth.Body(rq.r)
	if err != nil {
		return nil, err
	}
	var cs *checksum.Verifier
	// A CompleteMultipartUpload's x-amz-checksum-* header is the object's composite checksum,
	// checked against its parts (checkCompleteChecksum), not the XML body's.
	if rq.op != "CompleteMultipartUpload" {
		if cs, err = checksum.FromRequest(rq.r.Header); err != nil {
			return nil, err
		}
	}
	b := &body{payload: p, cs: cs, r: p}
	if cs != nil {
		b.r = cs.Wrap(p)
	}
	if vs, sent := rq.r.Header["Content-Md5"]; sent {
		if len(vs) != 1 || vs[0] == "" {
			return nil, errorf(checksum.ErrInvalidDigest, "the Content-MD5 you specified is empty or repeated")
		}
		if b.md5, err = checksum.ParseContentMD5(vs[0]); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// size is the decoded size the client declared, or -1.
func (b *body) size() int64 { return b.payload.Size() }

// checksums verifies and returns the flexible checksum once the body has been read to EOF.
func (b *body) checksums() (engine.Checksums, error) {
	if b.cs == nil {
		return nil, nil
	}
	m, err := b.cs.Finish(b.payload.Trailers())
	return engine.Checksums(m), err
}

// payload returns rq's body as a reader whose EOF is reported only after every integrity check
// (signature, SHA-256, Content-MD5, flexible checksum) has passed. For small bodies (XML).
func (rq *request) payload() (io.Reader, error) {
	b, err := rq.openBody()
	if err != nil {
		return nil, err
	}
	v := &verifiedReader{b: b}
	if b.md5 != nil {
		v.h = md5.New()
	}
	return v, nil
}

type verifiedReader struct {
	b *body
	h hash.Hash
}

func (v *verifiedReader) Read(p []byte) (int, error) {
	n, err := v.b.r.Read(p)
	if v.h != nil {
		v.h.Write(p[:n])
	}
	if err == io.EOF {
		if v.h != nil && !bytes.Equal(v.h.Sum(nil), v.b.md5) {
			return n, errorf(errBadDigest, "the Content-MD5 you specified did not match what we received")
		}
		if _, cerr := v.b.checksums(); cerr != nil {
			return n, cerr
		}
	}
	return n, err
}

// limitedBody fails a body of unknown length once it passes the PUT size limit.
type limitedBody struct {
	r    io.Reader
	left int64
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, errorf(errEntityTooLarge, "a single PUT is limited to %d bytes; use a multipart upload", int64(MaxPutSize))
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, errorf(errEntityTooLarge, "a single PUT is limited to %d bytes; use a multipart upload", int64(MaxPutSize))
	}
	return n, err
}
