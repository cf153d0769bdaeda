package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Input is the decoded form of the request record: the same document the policy sees as its
// input, minus the proposal. The host fills one per request and encodes it with
// [Input.AppendRecord]; a guest reads the record through [Record] (or [DecodeRecord]).
type Input struct {
	Action    string // "s3:PutObject", …
	Principal Principal
	Bucket    Bucket // zero Name: the request names no bucket (ListBuckets)
	Object    Object // zero Key: the request names no object
	Request   Request
}

// Principal is the authenticated caller.
type Principal struct {
	AccessKey string
	Name      string
	Groups    []string
	Root      bool
}

// Bucket is the bucket the request names, as stored.
type Bucket struct {
	Name     string
	Owner    string
	Strategy Strategy // the bucket's configured strategy
	Tags     map[string]string
}

// Object is the object the request names and its current metadata (Exists false: none yet).
type Object struct {
	Key         string
	Exists      bool
	ETag        string
	Size        int64
	Generation  uint64
	ContentType string
	LeaseState  string            // "", "available", "leased", "expired", "breaking", "broken"
	Tags        map[string]string // the current version's object tags
}

// Request is what the client sent.
type Request struct {
	Method     string
	Headers    map[string]string // lower-case names
	Size       int64             // body size; -1 when unknown
	RemoteAddr string
	Time       time.Time // the gateway's clock at the request; zero: unknown
}

// Layout of the fixed part of a record. See the package documentation.
const (
	// HeaderSize is the size of the fixed part of an ABI 1.1 record. A record starts with its
	// header size; later minors may grow it, and a reader ignores what it does not know.
	HeaderSize = 168
	// HeaderSizeV1_0 is the header size of ABI 1.0 records, which have no [ListObjectTags]
	// slot. A reader takes a list whose slot lies past the record's header size as empty.
	HeaderSizeV1_0 = 160

	offHeaderSize = 0
	offFlags      = 4
	offObjSize    = 8
	offGeneration = 16
	offReqSize    = 24
	offTime       = 32
	offStrings    = 40
	offLists      = offStrings + 8*int(numFields) // 136; list slot j at 136+8*j
)

// Flag bits of the record's flags word (offset 4).
const (
	FlagRoot         = 1 << 0 // principal.root
	FlagBucket       = 1 << 1 // the request names a bucket
	FlagObjectExists = 1 << 2 // object.exists
)

// Field names a string slot of the record. Slot i is at offset 40+8*i: u32 offset of the
// bytes from the start of the record, then u32 length.
type Field uint8

// String slots, in slot order.
const (
	FieldAction Field = iota
	FieldAccessKey
	FieldPrincipalName
	FieldBucket
	FieldBucketOwner
	FieldBucketStrategy
	FieldKey
	FieldETag
	FieldContentType
	FieldLeaseState
	FieldMethod
	FieldRemoteAddr
	numFields
)

// List names a list slot of the record. Slot i is at offset 136+8*i: u32 offset of the first
// entry, then u32 count. An entry is a string (u32 length, then bytes), or for pair lists two
// such strings, name then value.
type List uint8

// List slots, in slot order.
const (
	ListGroups     List = iota // strings
	ListTags                   // pairs: bucket tag key, value
	ListHeaders                // pairs: lower-case header name, value
	ListObjectTags             // pairs: the object's tag key, value (ABI 1.1; slot at 160)
	numLists
)

// present reports whether list l's slot lies inside r's header: a record of an older minor has
// fewer slots.
func (r Record) present(l List) bool {
	return l < numLists && uint64(offLists+8*int(l)+8) <= uint64(r.u32(offHeaderSize))
}

func (in *Input) strings() [numFields]string {
	return [numFields]string{
		FieldAction:         in.Action,
		FieldAccessKey:      in.Principal.AccessKey,
		FieldPrincipalName:  in.Principal.Name,
		FieldBucket:         in.Bucket.Name,
		FieldBucketOwner:    in.Bucket.Owner,
		FieldBucketStrategy: string(in.Bucket.Strategy),
		FieldKey:            in.Object.Key,
		FieldETag:           in.Object.ETag,
		FieldContentType:    in.Object.ContentType,
		FieldLeaseState:     in.Object.LeaseState,
		FieldMethod:         in.Request.Method,
		FieldRemoteAddr:     in.Request.RemoteAddr,
	}
}

// AppendRecord appends in, encoded as an ABI v1 request record, to dst and returns the
// extended slice. It does not allocate when dst has room. Map entries are written in Go's map
// iteration order, so two encodings of the same Input may differ in pair order.
func (in *Input) AppendRecord(dst []byte) []byte {
	le := binary.LittleEndian
	base := len(dst)
	dst = append(dst, make([]byte, HeaderSize)...) // the compiler turns this into a clear, no allocation
	h := dst[base : base+HeaderSize]
	le.PutUint32(h[offHeaderSize:], HeaderSize)
	var flags uint32
	if in.Principal.Root {
		flags |= FlagRoot
	}
	if in.Bucket.Name != "" {
		flags |= FlagBucket
	}
	if in.Object.Exists {
		flags |= FlagObjectExists
	}
	le.PutUint32(h[offFlags:], flags)
	le.PutUint64(h[offObjSize:], uint64(in.Object.Size))
	le.PutUint64(h[offGeneration:], in.Object.Generation)
	le.PutUint64(h[offReqSize:], uint64(in.Request.Size))
	var nanos int64
	if !in.Request.Time.IsZero() {
		nanos = in.Request.Time.UnixNano()
	}
	le.PutUint64(h[offTime:], uint64(nanos))

	strs := in.strings()
	for i, s := range strs {
		slot := base + offStrings + 8*i
		le.PutUint32(dst[slot:], uint32(len(dst)-base))
		le.PutUint32(dst[slot+4:], uint32(len(s)))
		dst = append(dst, s...)
	}

	putList := func(l List, count int) {
		slot := base + offLists + 8*int(l)
		le.PutUint32(dst[slot:], uint32(len(dst)-base))
		le.PutUint32(dst[slot+4:], uint32(count))
	}
	putList(ListGroups, len(in.Principal.Groups))
	for _, g := range in.Principal.Groups {
		dst = appendString(dst, g)
	}
	putList(ListTags, len(in.Bucket.Tags))
	for k, v := range in.Bucket.Tags {
		dst = appendString(appendString(dst, k), v)
	}
	putList(ListHeaders, len(in.Request.Headers))
	for k, v := range in.Request.Headers {
		dst = appendString(appendString(dst, k), v)
	}
	putList(ListObjectTags, len(in.Object.Tags))
	for k, v := range in.Object.Tags {
		dst = appendString(appendString(dst, k), v)
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

// ErrRecord is wrapped by the errors of [Record.Check] and [DecodeRecord].
var ErrRecord = errors.New("abi: malformed record")

// Record is an encoded request record. Its accessors read fields in place without copying or
// allocating; they assume [Record.Check] returned nil and return zero values for what is out of
// range.
type Record []byte

func (r Record) u32(off int) uint32 {
	if off+4 > len(r) {
		return 0
	}
	return binary.LittleEndian.Uint32(r[off:])
}

func (r Record) u64(off int) uint64 {
	if off+8 > len(r) {
		return 0
	}
	return binary.LittleEndian.Uint64(r[off:])
}

// Check reports whether r is a well-formed record: a header of at least [HeaderSizeV1_0] bytes
// and every slot and list entry inside r.
func (r Record) Check() error {
	if len(r) < HeaderSizeV1_0 {
		return fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrRecord, len(r), HeaderSizeV1_0)
	}
	if hs := r.u32(offHeaderSize); hs < HeaderSizeV1_0 || uint64(hs) > uint64(len(r)) {
		return fmt.Errorf("%w: header size %d", ErrRecord, hs)
	}
	for f := range numFields {
		off, n := uint64(r.u32(offStrings+8*int(f))), uint64(r.u32(offStrings+8*int(f)+4))
		if off+n > uint64(len(r)) {
			return fmt.Errorf("%w: string slot %d (%d+%d) past the end (%d)", ErrRecord, f, off, n, len(r))
		}
	}
	for l := range numLists {
		if !r.present(l) {
			continue
		}
		off, count := r.u32(offLists+8*int(l)), r.u32(offLists+8*int(l)+4)
		per := uint64(1)
		if l != ListGroups {
			per = 2
		}
		p := uint64(off)
		for range uint64(count) * per {
			if p+4 > uint64(len(r)) {
				return fmt.Errorf("%w: list slot %d past the end", ErrRecord, l)
			}
			p += 4 + uint64(r.u32(int(p)))
			if p > uint64(len(r)) {
				return fmt.Errorf("%w: list slot %d past the end", ErrRecord, l)
			}
		}
	}
	return nil
}

// Bytes returns the bytes of a string field, aliasing r.
func (r Record) Bytes(f Field) []byte {
	if f >= numFields {
		return nil
	}
	off, n := uint64(r.u32(offStrings+8*int(f))), uint64(r.u32(offStrings+8*int(f)+4))
	if off+n > uint64(len(r)) {
		return nil
	}
	return r[off : off+n : off+n]
}

// Flags returns the flags word ([FlagRoot], [FlagBucket], [FlagObjectExists]).
func (r Record) Flags() uint32 { return r.u32(offFlags) }

// ObjectSize returns object.size.
func (r Record) ObjectSize() int64 { return int64(r.u64(offObjSize)) }

// Generation returns object.generation.
func (r Record) Generation() uint64 { return r.u64(offGeneration) }

// RequestSize returns request.size (-1: unknown).
func (r Record) RequestSize() int64 { return int64(r.u64(offReqSize)) }

// UnixNano returns request.time in nanoseconds since the Unix epoch (0: unknown).
func (r Record) UnixNano() int64 { return int64(r.u64(offTime)) }

// Len returns the number of entries of list l (pairs count once); 0 for a list the record's
// minor does not have.
func (r Record) Len(l List) int {
	if !r.present(l) {
		return 0
	}
	return int(r.u32(offLists + 8*int(l) + 4))
}

// Each calls fn for every entry of list l, in order, until fn returns false. For ListGroups
// value is nil. The slices alias r.
func (r Record) Each(l List, fn func(name, value []byte) bool) {
	if !r.present(l) {
		return
	}
	p := int(r.u32(offLists + 8*int(l)))
	next := func() []byte {
		n := int(r.u32(p))
		if p+4+n > len(r) {
			p = len(r)
			return nil
		}
		b := r[p+4 : p+4+n : p+4+n]
		p += 4 + n
		return b
	}
	for range r.Len(l) {
		name := next()
		var value []byte
		if l != ListGroups {
			value = next()
		}
		if !fn(name, value) {
			return
		}
	}
}

// Lookup returns the value of the first pair of list l whose name is name.
func (r Record) Lookup(l List, name string) (value []byte, ok bool) {
	r.Each(l, func(n, v []byte) bool {
		if string(n) == name { // no allocation: the compiler compares in place
			value, ok = v, true
			return false
		}
		return true
	})
	return value, ok
}

// DecodeRecord decodes a whole record into a new Input (allocating every string and map). Guests
// that only need a few fields should use [Record]'s accessors instead.
func DecodeRecord(b []byte) (*Input, error) {
	r := Record(b)
	if err := r.Check(); err != nil {
		return nil, err
	}
	s := func(f Field) string { return string(r.Bytes(f)) }
	flags := r.Flags()
	in := &Input{
		Action: s(FieldAction),
		Principal: Principal{
			AccessKey: s(FieldAccessKey),
			Name:      s(FieldPrincipalName),
			Root:      flags&FlagRoot != 0,
		},
		Bucket: Bucket{Name: s(FieldBucket), Owner: s(FieldBucketOwner), Strategy: Strategy(s(FieldBucketStrategy))},
		Object: Object{
			Key:         s(FieldKey),
			Exists:      flags&FlagObjectExists != 0,
			ETag:        s(FieldETag),
			Size:        r.ObjectSize(),
			Generation:  r.Generation(),
			ContentType: s(FieldContentType),
			LeaseState:  s(FieldLeaseState),
		},
		Request: Request{
			Method:     s(FieldMethod),
			Size:       r.RequestSize(),
			RemoteAddr: s(FieldRemoteAddr),
		},
	}
	if ns := r.UnixNano(); ns != 0 {
		in.Request.Time = time.Unix(0, ns).UTC()
	}
	if n := r.Len(ListGroups); n > 0 {
		in.Principal.Groups = make([]string, 0, n)
		r.Each(ListGroups, func(g, _ []byte) bool { in.Principal.Groups = append(in.Principal.Groups, string(g)); return true })
	}
	if n := r.Len(ListTags); n > 0 {
		in.Bucket.Tags = make(map[string]string, n)
		r.Each(ListTags, func(k, v []byte) bool { in.Bucket.Tags[string(k)] = string(v); return true })
	}
	if n := r.Len(ListHeaders); n > 0 {
		in.Request.Headers = make(map[string]string, n)
		r.Each(ListHeaders, func(k, v []byte) bool { in.Request.Headers[string(k)] = string(v); return true })
	}
	if n := r.Len(ListObjectTags); n > 0 {
		in.Object.Tags = make(map[string]string, n)
		r.Each(ListObjectTags, func(k, v []byte) bool { in.Object.Tags[string(k)] = string(v); return true })
	}
	return in, nil
}
