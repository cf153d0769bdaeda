package sdk_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/weirproject/weir/sdk"
	"github.com/weirproject/weir/sdk/abi"
	"github.com/weirproject/weir/sdk/sdktest"
)

func TestRequestAccessors(t *testing.T) {
	at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	in := &abi.Input{
		Action:    "s3:PutObject",
		Principal: abi.Principal{AccessKey: "AK", Name: "alice", Groups: []string{"dev"}, Root: false},
		Bucket:    abi.Bucket{Name: "b", Owner: "alice", Strategy: "etag", Tags: map[string]string{"tier": "gold"}},
		Object:    abi.Object{Key: "k", Exists: true, ETag: `"e"`, Size: 3, Generation: 9, ContentType: "text/plain", LeaseState: "available", Tags: map[string]string{"tier": "silver"}},
		Request:   abi.Request{Method: "PUT", Headers: map[string]string{"content-type": "image/png"}, Size: 10, RemoteAddr: "1.2.3.4:5", Time: at},
	}
	var got []string
	_, err := sdktest.Run(func(r *sdk.Request) sdk.Decision {
		tag, ok := r.Tag("tier")
		_, missing := r.Tag("nope")
		objTag, objOK := r.ObjectTag("tier")
		got = []string{r.Action(), r.Method(), r.Bucket(), r.BucketOwner(), r.BucketStrategy(), tag,
			fmt.Sprint(ok, missing), r.Key(), fmt.Sprint(r.Exists()), r.ObjectETag(), fmt.Sprint(r.ObjectSize()),
			r.ObjectContentType(), fmt.Sprint(r.Generation()), r.LeaseState(), r.Principal(), r.AccessKey(),
			fmt.Sprint(r.Root(), r.InGroup("dev"), r.InGroup("ops")), r.Header("Content-Type"), fmt.Sprint(r.Size()),
			r.RemoteAddr(), r.Time().UTC().Format(time.RFC3339), string(r.Config()), r.Input().Object.Key, objTag, fmt.Sprint(objOK)}
		return sdk.Pass()
	}, in, []byte(`{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"s3:PutObject", "PUT", "b", "alice", "etag", "gold", "true false", "k", "true", `"e"`, "3",
		"text/plain", "9", "available", "alice", "AK", "false true false", "image/png", "10", "1.2.3.4:5",
		"2026-11-24T12:00:00Z", `{"x":1}`, "k", "silver", "true"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestDecisions(t *testing.T) {
	in := &abi.Input{Action: "s3:GetObject"}
	long := strings.Repeat("é", abi.MaxReasonLen) // 2 bytes each: cut on a rune boundary
	cases := []struct {
		d        sdk.Decision
		want     sdktest.Result
		wantsErr bool
	}{
		{sdk.Pass(), sdktest.Result{Verdict: abi.Pass}, false},
		{sdk.Decision{}, sdktest.Result{Verdict: abi.Pass}, false},
		{sdk.Propose(sdk.Lease), sdktest.Result{Verdict: abi.Propose, Strategy: "lease"}, false},
		{sdk.Propose(sdk.ETag), sdktest.Result{Verdict: abi.Propose, Strategy: "etag"}, false},
		{sdk.Propose(sdk.LastWriterWins), sdktest.Result{Verdict: abi.Propose, Strategy: "last-writer-wins"}, false},
		{sdk.Deny("no"), sdktest.Result{Verdict: abi.Deny, Reason: "no"}, false},
		{sdk.Deny(long), sdktest.Result{Verdict: abi.Deny, Reason: long[:abi.MaxReasonLen]}, false},
		{sdk.Propose("optimistic"), sdktest.Result{Verdict: abi.Propose}, true},
	}
	for _, c := range cases {
		got, err := sdktest.Run(func(*sdk.Request) sdk.Decision { return c.d }, in, nil)
		if (err != nil) != c.wantsErr {
			t.Errorf("%+v: err = %v", c.d, err)
		}
		got.Logs = nil
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%+v: got %+v, want %+v", c.d, got, c.want)
		}
	}
}

func TestNoHandler(t *testing.T) {
	res, err := sdktest.Run(nil, &abi.Input{}, nil)
	if err == nil || len(res.Logs) != 1 {
		t.Errorf("err = %v, logs = %q", err, res.Logs)
	}
}

// A plugin that proposes a lease for keys under locks/ and denies large uploads; sdktest runs it
// natively, the way the wasm build would.
func ExampleHandle() {
	decide := func(r *sdk.Request) sdk.Decision {
		switch {
		case r.Size() > 1<<20:
			return sdk.Deny("uploads over 1 MiB are refused")
		case strings.HasPrefix(r.Key(), "locks/"):
			return sdk.Propose(sdk.Lease)
		}
		return sdk.Pass()
	}
	// In a plugin: func init() { sdk.Handle(decide) }
	for _, in := range []*abi.Input{
		{Action: "s3:PutObject", Object: abi.Object{Key: "locks/a"}, Request: abi.Request{Size: 10}},
		{Action: "s3:PutObject", Object: abi.Object{Key: "big"}, Request: abi.Request{Size: 2 << 20}},
		{Action: "s3:GetObject", Object: abi.Object{Key: "x"}},
	} {
		res, _ := sdktest.Run(decide, in, nil)
		fmt.Printf("%v %q %q\n", res.Verdict, res.Strategy, res.Reason)
	}
	// Output:
	// propose "lease" ""
	// deny "" "uploads over 1 MiB are refused"
	// pass "" ""
}
