package sdk

import (
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/weirproject/weir/sdk/abi"
	"github.com/weirproject/weir/sdk/internal/hostcall"
)

// Strategy names, for [Propose].
const (
	LastWriterWins = abi.NameLastWriterWins
	ETag           = abi.NameETag
	Lease          = abi.NameLease
)

// Handler decides one request. It runs on the instance's only goroutine; it may keep state in
// globals, but the host may throw an instance away at any time.
type Handler func(*Request) Decision

var handler Handler

// Handle registers h as the plugin. Call it from an init function: a reactor's main is never
// run. A second call replaces the first.
//
//	func init() { sdk.Handle(decide) }
//	func main() {}
func Handle(h Handler) { handler = h }

// Decision is what a [Handler] returns. The zero Decision passes.
type Decision struct {
	verdict  abi.Verdict
	strategy abi.Strategy
	reason   string
}

// Pass returns the decision of a plugin with no opinion.
func Pass() Decision { return Decision{} }

// Propose returns a decision proposing strategy ([LastWriterWins], [ETag] or [Lease]). The
// policy has the final word. An unknown name is a fault of the plugin: the host fails the
// request (or passes, with fail_open) and logs it.
func Propose(strategy string) Decision {
	s, ok := abi.ParseStrategy(strategy)
	if !ok {
		Log(abi.LogError, "sdk.Propose: unknown strategy "+strategy)
		s = abi.Strategy(strategy) // no code: the result carries code 0, which the host refuses
	}
	return Decision{verdict: abi.Propose, strategy: s}
}

// Deny returns a decision refusing the request; the client sees reason. Reasons longer than
// [abi.MaxReasonLen] bytes are cut there.
func Deny(reason string) Decision {
	if len(reason) > abi.MaxReasonLen {
		cut := abi.MaxReasonLen
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	return Decision{verdict: abi.Deny, reason: reason}
}

// Verdict returns the decision's verdict.
func (d Decision) Verdict() abi.Verdict { return d.verdict }

// Strategy returns the proposed strategy's name ("" unless the verdict is Propose).
func (d Decision) Strategy() string { return d.strategy.String() }

// Reason returns the reason of a deny.
func (d Decision) Reason() string { return d.reason }

// Log writes msg to the gateway's log, tagged with the plugin's name.
func Log(level abi.LogLevel, msg string) { hostcall.Log(int32(level), msg) }

// Config returns the plugin's config: the JSON text of the manifest's "config" value (nil
// when absent). It is read from the host once per instance; it may be called from init.
// Do not modify the returned slice.
func Config() []byte { return hostcall.Config() }

// Request is one request, read lazily from the host's record: accessors read fields in place
// and allocate nothing. Strings returned alias the record and are valid only until the handler
// returns (the next call reuses its buffer): copy one you keep (strings.Clone). A Request is
// only valid during the call it was passed to.
type Request struct {
	rec abi.Record
}

func (r *Request) str(f abi.Field) string {
	b := r.rec.Bytes(f)
	if len(b) == 0 {
		return ""
	}
	// Valid until the handler returns: the next call reuses the record's buffer.
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// Action returns the S3 action, e.g. "s3:PutObject".
func (r *Request) Action() string { return r.str(abi.FieldAction) }

// Method returns the HTTP method.
func (r *Request) Method() string { return r.str(abi.FieldMethod) }

// Bucket returns the bucket's name ("" when the request names none).
func (r *Request) Bucket() string { return r.str(abi.FieldBucket) }

// BucketOwner returns the bucket owner's name.
func (r *Request) BucketOwner() string { return r.str(abi.FieldBucketOwner) }

// BucketStrategy returns the bucket's configured strategy name.
func (r *Request) BucketStrategy() string { return r.str(abi.FieldBucketStrategy) }

// Tag returns the value of the bucket tag k (the object's: [Request.ObjectTag]).
func (r *Request) Tag(k string) (string, bool) {
	v, ok := r.rec.Lookup(abi.ListTags, k)
	return bstr(v), ok
}

// ObjectTag returns the value of the object tag k of the current object (ABI 1.1).
func (r *Request) ObjectTag(k string) (string, bool) {
	v, ok := r.rec.Lookup(abi.ListObjectTags, k)
	return bstr(v), ok
}

// Key returns the object key ("" when the request names none).
func (r *Request) Key() string { return r.str(abi.FieldKey) }

// Exists reports whether the object exists now.
func (r *Request) Exists() bool { return r.rec.Flags()&abi.FlagObjectExists != 0 }

// ObjectETag returns the current object's ETag, quoted.
func (r *Request) ObjectETag() string { return r.str(abi.FieldETag) }

// ObjectSize returns the current object's size.
func (r *Request) ObjectSize() int64 { return r.rec.ObjectSize() }

// ObjectContentType returns the current object's content type (the request's is
// Header("content-type")).
func (r *Request) ObjectContentType() string { return r.str(abi.FieldContentType) }

// Generation returns the current object's generation.
func (r *Request) Generation() uint64 { return r.rec.Generation() }

// LeaseState returns the object's lease state ("", "available", "leased", "expired", "breaking", "broken").
func (r *Request) LeaseState() string { return r.str(abi.FieldLeaseState) }

// Principal returns the caller's name.
func (r *Request) Principal() string { return r.str(abi.FieldPrincipalName) }

// AccessKey returns the caller's access key.
func (r *Request) AccessKey() string { return r.str(abi.FieldAccessKey) }

// Root reports whether the caller is root.
func (r *Request) Root() bool { return r.rec.Flags()&abi.FlagRoot != 0 }

// InGroup reports whether the caller belongs to group g.
func (r *Request) InGroup(g string) bool {
	found := false
	r.rec.Each(abi.ListGroups, func(name, _ []byte) bool {
		found = string(name) == g
		return !found
	})
	return found
}

// Header returns the value of the request header name (any case), "" when absent.
func (r *Request) Header(name string) string {
	v, _ := r.rec.Lookup(abi.ListHeaders, strings.ToLower(name))
	return bstr(v)
}

// Size returns the request body's size, -1 when unknown.
func (r *Request) Size() int64 { return r.rec.RequestSize() }

// RemoteAddr returns the client's address.
func (r *Request) RemoteAddr() string { return r.str(abi.FieldRemoteAddr) }

// Time returns the gateway's clock at the request (zero when unknown). Guests have no clock
// of their own unless the manifest grants "clock".
func (r *Request) Time() time.Time {
	if ns := r.rec.UnixNano(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Config returns the plugin's config; see [Config].
func (r *Request) Config() []byte { return Config() }

// Record returns the raw record, for fields this API does not cover yet.
func (r *Request) Record() abi.Record { return r.rec }

// Input decodes the whole record (allocating); handy for logging and tests.
func (r *Request) Input() *abi.Input {
	in, err := abi.DecodeRecord(r.rec)
	if err != nil {
		return &abi.Input{}
	}
	return in
}
