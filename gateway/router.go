package gateway

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/weirproject/weir/engine"
	"github.com/weirproject/weir/gateway/internal/decide"
	"github.com/weirproject/weir/gateway/internal/sigv4"
)

// request is one S3 request on its way through the gateway.
type request struct {
	w      *echo.Response
	r      *http.Request
	id     string
	op     string // S3 operation name, for metrics, logs and the decision step
	bucket string
	key    string
	query  url.Values
	user   *User
	auth   *sigv4.Auth
	// aborted: the response was cut short (client gone, or an error after the body began).
	aborted bool
	// decisions made for the request, logged when it ends (with the decision log on).
	decisions []decisionRecord
}

type handler func(*request) error

// serveS3 is the single entry point: admin paths, then S3 routing, auth and dispatch.
func (s *Server) serveS3(c echo.Context) error {
	r := c.Request()
	switch r.URL.Path {
	case "/healthz", "/readyz", "/metrics":
		if !s.cfg.SeparateAdmin && r.Method == http.MethodGet && r.Header.Get("Authorization") == "" && !r.URL.Query().Has("X-Amz-Signature") {
			s.serveAdmin(c.Response(), r)
			return nil
		}
	}
	start := time.Now()
	rq := &request{w: c.Response(), r: r, id: s.newRequestID(), query: r.URL.Query()}
	rq.w.Header().Set("x-amz-request-id", rq.id)
	rq.w.Header().Set("x-amz-id-2", rq.id)
	rq.w.Header().Set("Server", "weir")
	s.metrics.inflight.Inc()
	defer s.metrics.inflight.Dec()
	// Deferred, so that a response aborted by a panic (writeError after the body began) is
	// still counted and logged.
	defer s.observe(rq, start)
	defer s.logDecisions(rq) // also when the response is aborted mid-body

	h, err := s.route(rq)
	s.addCORSHeaders(rq)
	if err == nil && !selfAuthenticated[rq.op] {
		err = s.authenticate(rq)
	}
	if err == nil {
		err = h(rq)
	}
	if err != nil {
		s.writeError(rq, err)
	}
	return nil
}

// route resolves bucket and key (path-style or virtual-hosted) and picks the handler.
func (s *Server) route(rq *request) (handler, error) {
	path := rq.r.URL.Path
	bucket := ""
	if host := hostOnly(rq.r.Host); host != "" {
		for _, d := range s.cfg.Domains {
			if strings.HasSuffix(host, "."+d) {
				bucket = strings.TrimSuffix(host, "."+d)
				break
			}
		}
	}
	rest := strings.TrimPrefix(path, "/")
	if bucket == "" {
		bucket, rest, _ = strings.Cut(rest, "/")
	}
	rq.bucket, rq.key = bucket, rest
	rq.op = "Unknown"
	h, op := s.pick(rq)
	rq.op = op
	if h == nil {
		if op == "NotImplemented" {
			return nil, errorf(errNotImplemented, "%s %s is not implemented by weir", rq.r.Method, describeSubresource(rq.query))
		}
		return nil, errorf(errMethodNotAllowed, "%s is not allowed on this resource", rq.r.Method)
	}
	return h, nil
}

// unsupportedSubresources are S3 sub-resources weir answers with NotImplemented.
var unsupportedSubresources = []string{
	"torrent", "select", "restore", "metadataTable",
}

func describeSubresource(q url.Values) string {
	for _, k := range unsupportedSubresources {
		if q.Has(k) {
			return "?" + k
		}
	}
	return "this request"
}

func hasUnsupported(q url.Values) bool {
	for _, k := range unsupportedSubresources {
		if q.Has(k) {
			return true
		}
	}
	return false
}

// Browser access (cors.go, post.go): the operations that carry no SigV4 request signature. A
// preflight is answered from the bucket's CORS rules alone; a POST form is signed by its policy,
// which its handler verifies.
var selfAuthenticated = map[string]bool{"CORSPreflight": true, "PostObject": true}

// pickBrowser dispatches the browser's requests; op is "" when rq is none of them.
func (s *Server) pickBrowser(rq *request) (handler, string) {
	switch {
	case rq.r.Method == http.MethodOptions && rq.bucket != "":
		return s.preflight, "CORSPreflight"
	case rq.r.Method == http.MethodPost && rq.bucket != "" && rq.key == "" && len(rq.query) == 0 && isPostForm(rq.r):
		return s.postObject, "PostObject"
	case rq.key == "" && rq.query.Has("cors"):
		switch rq.r.Method {
		case http.MethodGet:
			return s.getBucketCors, "GetBucketCors"
		case http.MethodPut:
			return s.putBucketCors, "PutBucketCors"
		case http.MethodDelete:
			return s.deleteBucketCors, "DeleteBucketCors"
		}
		return nil, "MethodNotAllowed"
	}
	return nil, ""
}

// pickBucketSubresource dispatches the bucket sub-resources that configure what weir does not
// implement (config.go); op is "" when q names none of them.
func (s *Server) pickBucketSubresource(rq *request) (handler, string) {
	q, m := rq.query, rq.r.Method
	switch {
	case q.Has("acl"):
		switch m {
		case http.MethodGet:
			return s.getBucketACL, "GetBucketAcl"
		case http.MethodPut:
			return s.putACL("s3:PutBucketAcl", false), "PutBucketAcl"
		}
		return nil, "MethodNotAllowed"
	case q.Has("versions"):
		if m == http.MethodGet {
			return s.listObjectVersions, "ListObjectVersions"
		}
		return nil, "MethodNotAllowed"
	}
	sub, c, ok := bucketConfigOf(q)
	if !ok {
		return nil, ""
	}
	switch m {
	case http.MethodGet:
		return s.getBucketConfig(sub, c), "GetBucket" + c.name
	case http.MethodPut:
		return s.putBucketConfig(sub, c), "PutBucket" + c.name
	case http.MethodDelete:
		if deletableConfigs[sub] {
			return s.deleteBucketConfig(c), "DeleteBucket" + c.name
		}
	}
	return nil, "MethodNotAllowed"
}

// pickObjectSubresource dispatches an object's ACL and Object Lock sub-resources; op is "" when
// q names none of them.
func (s *Server) pickObjectSubresource(rq *request) (handler, string) {
	q, m := rq.query, rq.r.Method
	switch {
	case q.Has("acl"):
		switch m {
		case http.MethodGet:
			return s.getObjectACL, "GetObjectAcl"
		case http.MethodPut:
			return s.putACL("s3:PutObjectAcl", true), "PutObjectAcl"
		}
		return nil, "MethodNotAllowed"
	case q.Has("retention"), q.Has("legal-hold"):
		op := "ObjectRetention"
		if q.Has("legal-hold") {
			op = "ObjectLegalHold"
		}
		switch m {
		case http.MethodGet:
			return s.getObjectLockState("s3:Get" + op), "Get" + op
		case http.MethodPut:
			return s.refuseObjectLock, "Put" + op
		}
		return nil, "MethodNotAllowed"
	case q.Has("attributes"):
		if m == http.MethodGet {
			return s.getObjectAttributes, "GetObjectAttributes"
		}
		return nil, "MethodNotAllowed"
	case q.Has("tagging"):
		switch m {
		case http.MethodGet:
			return s.getObjectTagging, "GetObjectTagging"
		case http.MethodPut:
			return s.putObjectTagging, "PutObjectTagging"
		case http.MethodDelete:
			return s.deleteObjectTagging, "DeleteObjectTagging"
		}
		return nil, "MethodNotAllowed"
	}
	return nil, ""
}

// pick is S3's dispatch table: method × (service | bucket | object) × sub-resource.
func (s *Server) pick(rq *request) (handler, string) {
	q, m := rq.query, rq.r.Method
	if hasUnsupported(q) {
		return nil, "NotImplemented"
	}
	if h, op := s.pickBrowser(rq); op != "" {
		return h, op
	}
	switch {
	case rq.bucket == "":
		if m == http.MethodGet {
			return s.listBuckets, "ListBuckets"
		}
	case rq.key == "":
		if h, op := s.pickBucketSubresource(rq); op != "" {
			return h, op
		}
		switch m {
		case http.MethodPut:
			switch {
			case q.Has("tagging"):
				return s.putBucketTagging, "PutBucketTagging"
			case q.Has("concurrency"):
				return s.putBucketConcurrency, "PutBucketConcurrency"
			case q.Has("lease"):
				return s.leaseBucket, "LeaseBucket"
			default:
				return s.createBucket, "CreateBucket"
			}
		case http.MethodGet:
			switch {
			case q.Has("location"):
				return s.getBucketLocation, "GetBucketLocation"
			case q.Has("tagging"):
				return s.getBucketTagging, "GetBucketTagging"
			case q.Has("concurrency"):
				return s.getBucketConcurrency, "GetBucketConcurrency"
			case q.Has("uploads"):
				return s.listMultipartUploads, "ListMultipartUploads"
			case q.Get("list-type") == "2":
				return s.listObjectsV2, "ListObjectsV2"
			default:
				return s.listObjectsV1, "ListObjects"
			}
		case http.MethodHead:
			return s.headBucket, "HeadBucket"
		case http.MethodDelete:
			if q.Has("tagging") {
				return s.deleteBucketTagging, "DeleteBucketTagging"
			}
			return s.deleteBucket, "DeleteBucket"
		case http.MethodPost:
			if q.Has("delete") {
				return s.deleteObjects, "DeleteObjects"
			}
		}
	default:
		if h, op := s.pickObjectSubresource(rq); op != "" {
			return h, op
		}
		switch m {
		case http.MethodPut:
			switch {
			case q.Has("lease"):
				return s.leaseObject, "LeaseObject"
			case q.Has("uploadId") && rq.r.Header.Get("x-amz-copy-source") != "":
				return s.uploadPartCopy, "UploadPartCopy"
			case q.Has("uploadId"):
				return s.uploadPart, "UploadPart"
			case rq.r.Header.Get("x-amz-copy-source") != "":
				return s.copyObject, "CopyObject"
			default:
				return s.putObject, "PutObject"
			}
		case http.MethodGet:
			if q.Has("uploadId") {
				return s.listParts, "ListParts"
			}
			return s.getObject, "GetObject"
		case http.MethodHead:
			return s.headObject, "HeadObject"
		case http.MethodDelete:
			if q.Has("uploadId") {
				return s.abortMultipartUpload, "AbortMultipartUpload"
			}
			return s.deleteObject, "DeleteObject"
		case http.MethodPost:
			switch {
			case q.Has("uploads"):
				return s.createMultipartUpload, "CreateMultipartUpload"
			case q.Has("uploadId"):
				return s.completeMultipartUpload, "CompleteMultipartUpload"
			}
		}
	}
	return nil, "MethodNotAllowed"
}

// authenticate verifies the signature and resolves the user. Anonymous requests are denied:
// weir has no public buckets.
func (s *Server) authenticate(rq *request) error {
	a, err := s.verifier.Verify(rq.r)
	if err != nil {
		return err
	}
	rq.auth = a
	rq.user = s.users[a.AccessKey]
	return nil
}

// writeError renders err as S3 XML with the status from the error table.
func (s *Server) writeError(rq *request, err error) {
	if rq.r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		// The client hung up: there is nobody to answer and nothing went wrong here.
		s.log.Debug("client went away", "request_id", rq.id, "op", rq.op, "err", err)
		rq.aborted = true
		rq.w.Status = 499
		return
	}
	if se := (*sigv4.SignatureError)(nil); errors.As(err, &se) && s.log.Enabled(rq.r.Context(), slog.LevelDebug) {
		// What the server hashed, to compare with the client's; never the key or secret.
		s.log.Debug("signature mismatch", "request_id", rq.id, "op", rq.op, "reason", se.Reason,
			"canonical_request", se.CanonicalRequest, "string_to_sign", se.StringToSign)
	}
	e, known := lookupS3Error(err)
	if e.status == http.StatusPreconditionFailed || e.status == http.StatusPreconditionRequired {
		s.metrics.preconditionFailures.WithLabelValues(e.code).Inc()
	}
	msg := err.Error()
	if !known {
		s.log.Error("internal error", "request_id", rq.id, "op", rq.op, "bucket", rq.bucket, "key", rq.key, "err", err)
		msg = "we encountered an internal error, please try again"
	} else if errors.Is(err, decide.ErrPolicy) {
		s.log.Error("policy failed", "request_id", rq.id, "op", rq.op, "bucket", rq.bucket, "key", rq.key, "err", err)
		msg = "we encountered an internal error, please try again"
	} else if pe := (*decide.PluginError)(nil); errors.As(err, &pe) {
		// The client learns which plugin refused its request; the guest's details are logged.
		s.log.Error("plugin failed", "request_id", rq.id, "op", rq.op, "bucket", rq.bucket, "key", rq.key, "plugin", pe.Fault.Plugin, "kind", pe.Fault.Kind, "err", pe.Fault)
		rq.w.Header().Set("x-weir-plugin", pe.Fault.Plugin)
	} else if e.status >= 500 && e.status != http.StatusNotImplemented {
		s.log.Warn("request failed", "request_id", rq.id, "op", rq.op, "code", e.code, "err", err)
	}
	if rq.w.Committed {
		// The body has begun; the status is gone. Abort the connection so the client sees a
		// truncated response rather than a silently short one.
		s.log.Warn("error after response started", "request_id", rq.id, "op", rq.op, "err", err)
		abort(rq)
	}
	s.drainRejectedBody(rq.r)
	h := rq.w.Header()
	h.Del("Content-Length")
	if errors.Is(err, engine.ErrUnavailable) {
		// A store that cannot be reached is usually back within seconds (a restart, a failover).
		h.Set("Retry-After", "1")
	}
	if e.status == http.StatusNotModified {
		rq.w.WriteHeader(e.status) // with the ETag and Last-Modified the handler set
		return
	}
	h.Del("ETag")
	h.Del("Last-Modified")
	h.Set("Content-Type", "application/xml")
	rq.w.WriteHeader(e.status)
	if rq.r.Method == http.MethodHead {
		return
	}
	resource := rq.r.URL.Path
	body, _ := xml.Marshal(errorResponse{Code: e.code, Message: msg, Resource: resource, RequestID: rq.id})
	_, _ = rq.w.Write([]byte(xml.Header))
	_, _ = rq.w.Write(body)
}

// abort ends a response whose body has begun: the status is gone, so the connection is cut and
// the client sees a truncated response rather than a silently short one. serveS3's deferred
// observe still counts it.
func abort(rq *request) {
	rq.aborted = true
	panic(http.ErrAbortHandler)
}

// maxRejectedBodyDrain bounds how much of a refused request's body the gateway reads and
// discards. Answering before the body has arrived makes the server close the connection, and a
// client still sending then sees "connection reset" instead of the S3 error; past this size,
// the reset is the lesser cost.
const maxRejectedBodyDrain = 8 << 20

// drainRejectedBody reads the rest of a refused request's body (up to maxRejectedBodyDrain), so
// the client reads the error. That includes bodies announced with Expect: 100-continue: the Go
// HTTP client behind aws-sdk-go-v2 was seen sending them anyway after an early 403, and then
// reporting "connection reset" instead of the 403 (gateway's TestExampleUploadLimits).
// The drain is also bounded in time (Config.RejectedBodyDrainTimeout): a client trickling its
// body is cut rather than held open.
func (s *Server) drainRejectedBody(r *http.Request) {
	if r.Body == nil || r.ContentLength == 0 {
		return
	}
	if b, ok := r.Body.(*idleBody); ok {
		b.conn.capReads(time.Now().Add(s.cfg.RejectedBodyDrainTimeout))
	}
	_, _ = io.CopyN(io.Discard, r.Body, maxRejectedBodyDrain)
}

// writeXML renders v with status 200.
func writeXML(rq *request, status int, v any) error {
	body, err := xml.Marshal(v)
	if err != nil {
		return err
	}
	rq.w.Header().Set("Content-Type", "application/xml")
	rq.w.WriteHeader(status)
	_, _ = rq.w.Write([]byte(xml.Header))
	_, err = rq.w.Write(body)
	return err
}

func (s *Server) observe(rq *request, start time.Time) {
	status := rq.w.Status
	d := time.Since(start)
	s.metrics.observe(rq.op, status, d, rq.aborted)
	if s.log.Enabled(rq.r.Context(), slog.LevelDebug) {
		s.log.Debug("request", "request_id", rq.id, "op", rq.op, "bucket", rq.bucket, "key", rq.key,
			"status", status, "aborted", rq.aborted, "bytes_out", rq.w.Size, "duration", d, "remote", rq.r.RemoteAddr)
	}
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}
