package abi_test

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/weirproject/weir/sdk/abi"
)

func sample() *abi.Input {
	return &abi.Input{
		Action:    "s3:PutObject",
		Principal: abi.Principal{AccessKey: "AKIA1", Name: "alice", Groups: []string{"dev", "ops"}, Root: true},
		Bucket:    abi.Bucket{Name: "photos", Owner: "alice", Strategy: "etag", Tags: map[string]string{"critical": "true"}},
		Object: abi.Object{Key: "locks/a.json", Exists: true, ETag: `"abc"`, Size: 42, Generation: 7,
			ContentType: "application/json", LeaseState: "leased", Tags: map[string]string{"retain": "yes", "team": "infra"}},
		Request: abi.Request{Method: "PUT", Headers: map[string]string{"content-type": "text/plain", "if-match": `"abc"`},
			Size: 1024, RemoteAddr: "10.0.0.1:5000", Time: time.Date(2026, 11, 24, 12, 0, 0, 5, time.UTC)},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, in := range []*abi.Input{sample(), {}, {Request: abi.Request{Size: -1}}} {
		rec := in.AppendRecord(nil)
		got, err := abi.DecodeRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, in) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, in)
		}
	}
}

// TestLayout pins the documented byte layout: a WAT guest depends on these offsets.
func TestLayout(t *testing.T) {
	rec := abi.Record(sample().AppendRecord(nil))
	le := binary.LittleEndian
	if hs := le.Uint32(rec[0:]); hs != 168 {
		t.Fatalf("header size %d", hs)
	}
	if f := le.Uint32(rec[4:]); f != abi.FlagRoot|abi.FlagBucket|abi.FlagObjectExists {
		t.Errorf("flags %b", f)
	}
	str := func(slot int) string {
		off, n := le.Uint32(rec[slot:]), le.Uint32(rec[slot+4:])
		return string(rec[off : off+n])
	}
	for slot, want := range map[int]string{40: "s3:PutObject", 64: "photos", 88: "locks/a.json", 120: "PUT", 128: "10.0.0.1:5000"} {
		if got := str(slot); got != want {
			t.Errorf("slot at %d = %q, want %q", slot, got, want)
		}
	}
	if le.Uint64(rec[8:]) != 42 || le.Uint64(rec[16:]) != 7 || le.Uint64(rec[24:]) != 1024 {
		t.Error("integer fields")
	}
	if le.Uint32(rec[156:]) != 2 {
		t.Error("header count")
	}
	if le.Uint32(rec[164:]) != 2 {
		t.Error("object tag count (ABI 1.1, list slot 3 at 160)")
	}
	if v, ok := rec.Lookup(abi.ListObjectTags, "retain"); !ok || string(v) != "yes" {
		t.Errorf("object tag = %q, %v", v, ok)
	}
	if v, ok := rec.Lookup(abi.ListHeaders, "if-match"); !ok || string(v) != `"abc"` {
		t.Errorf("Lookup = %q, %v", v, ok)
	}
}

// TestRecordOfABI10: a record with the 1.0 header (160 bytes, no object tag slot) still reads,
// with no object tags, whatever follows its header.
func TestRecordOfABI10(t *testing.T) {
	in := sample()
	in.Object.Tags = nil
	rec := abi.Record(in.AppendRecord(nil))
	binary.LittleEndian.PutUint32(rec[0:], abi.HeaderSizeV1_0)
	binary.LittleEndian.PutUint32(rec[160:], 1<<30) // data of a 1.0 record, not a slot
	binary.LittleEndian.PutUint32(rec[164:], 1<<30)
	got, err := abi.DecodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Len(abi.ListObjectTags) != 0 || got.Object.Tags != nil || got.Object.Key != in.Object.Key || got.Request.Headers["if-match"] != `"abc"` {
		t.Errorf("decoded %+v", got)
	}
}

func TestAppendRecordAllocs(t *testing.T) {
	in := sample()
	buf := in.AppendRecord(nil)
	if n := testing.AllocsPerRun(100, func() { buf = in.AppendRecord(buf[:0]) }); n != 0 {
		t.Errorf("AppendRecord allocates %v times with a reused buffer", n)
	}
	rec := abi.Record(buf)
	if n := testing.AllocsPerRun(100, func() { rec.Lookup(abi.ListHeaders, "content-type") }); n != 0 {
		t.Errorf("Lookup allocates %v times", n)
	}
}

func TestCheckRejects(t *testing.T) {
	good := sample().AppendRecord(nil)
	cases := map[string][]byte{
		"short":      good[:100],
		"truncated":  good[:len(good)-3],
		"big header": func() []byte { b := append([]byte(nil), good...); binary.LittleEndian.PutUint32(b, 1<<20); return b }(),
		"bad slot": func() []byte {
			b := append([]byte(nil), good...)
			binary.LittleEndian.PutUint32(b[68:], 1<<30)
			return b
		}(),
	}
	for name, b := range cases {
		if _, err := abi.DecodeRecord(b); !errors.Is(err, abi.ErrRecord) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func FuzzRecord(f *testing.F) {
	f.Add(sample().AppendRecord(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := abi.Record(b)
		if r.Check() != nil {
			return
		}
		for fld := abi.FieldAction; fld <= abi.FieldRemoteAddr; fld++ {
			r.Bytes(fld)
		}
		if _, err := abi.DecodeRecord(b); err != nil {
			t.Fatal(err)
		}
	})
}

// TestParseStrategy: the names round-trip through their codes, and nothing else is a strategy.
func TestParseStrategy(t *testing.T) {
	for code, name := range []string{"", "last-writer-wins", "etag", "lease"} {
		s, ok := abi.ParseStrategy(name)
		if ok != (name != "") || string(s) != name || s.Code() != uint8(code) {
			t.Errorf("ParseStrategy(%q) = %q, %v (code %d)", name, s, ok, s.Code())
		}
		if got := abi.MakeResult(abi.Propose, s).Strategy(); got != s {
			t.Errorf("%q through a result came back as %q", name, got)
		}
	}
	for _, name := range []string{"bogus", "Lease", "ETAG", " etag"} {
		if s, ok := abi.ParseStrategy(name); ok || s != abi.NoStrategy || abi.Strategy(name).Known() {
			t.Errorf("ParseStrategy(%q) = %q, %v: accepted", name, s, ok)
		}
	}
}

func TestResult(t *testing.T) {
	valid := map[abi.Result]string{0x0000: "pass", 0x0101: "propose last-writer-wins", 0x0201: "propose etag", 0x0301: "propose lease", 0x0002: "deny"}
	for r, want := range valid {
		if err := r.Check(); err != nil {
			t.Errorf("%#x: %v", uint32(r), err)
		}
		got := r.Verdict().String()
		if s := r.Strategy().String(); s != "" {
			got += " " + s
		}
		if got != want {
			t.Errorf("%#x = %q, want %q", uint32(r), got, want)
		}
	}
	for _, r := range []abi.Result{0x0003, 0x0401, 0x0001, 0x0100, 0x0202, 0x10000, 0xff} {
		if r.Check() == nil {
			t.Errorf("%#x accepted", uint32(r))
		}
	}
	if err := abi.MakeResult(abi.Propose, "optimistic").Check(); err == nil {
		t.Error("a proposal of an unknown strategy packed into a valid result")
	}
	if abi.MakeResult(abi.Propose, abi.Lease) != 0x0301 || abi.Version != 0x10001 {
		t.Error("packing")
	}
}
