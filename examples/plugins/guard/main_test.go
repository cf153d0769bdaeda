package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/weirproject/weir/plugins"
	"github.com/weirproject/weir/plugins/pluginstest"
	"github.com/weirproject/weir/sdk/abi"
	"github.com/weirproject/weir/sdk/sdktest"
)

const testConf = `{"max_bytes": 1000, "deny_content_types": ["application/x-msdownload", "application/x-sh"]}`

var cases = []struct {
	name    string
	in      *abi.Input
	verdict abi.Verdict
	reason  string
}{
	{"small", put("a.txt", 10, "text/plain"), abi.Pass, ""},
	{"at limit", put("a.txt", 1000, ""), abi.Pass, ""},
	{"too big", put("a.bin", 1001, ""), abi.Deny, "uploads are limited to 1000 bytes"},
	{"exe", put("setup.exe", 10, "application/x-msdownload"), abi.Deny, "content type application/x-msdownload is not accepted"},
	{"script with params", put("x.sh", 10, "Application/X-Sh; charset=utf-8"), abi.Deny, "content type Application/X-Sh is not accepted"},
	{"get", &abi.Input{Action: "s3:GetObject", Object: abi.Object{Key: "a.bin"}, Request: abi.Request{Method: "GET", Size: 5000}}, abi.Pass, ""},
	{"multipart upload", post("big.bin", ""), abi.Deny, "multipart uploads are refused: uploads are limited to 1000 bytes in a single PUT"},
	{"part of an upload", put("big.bin", 1000, ""), abi.Pass, ""},
	{"create bucket", &abi.Input{Action: "s3:CreateBucket", Bucket: abi.Bucket{Name: "b"}, Request: abi.Request{Method: "PUT", Size: 5000}}, abi.Pass, ""},
}

func post(key, ct string) *abi.Input {
	in := put(key, 0, ct)
	in.Request.Method = "POST"
	return in
}

func put(key string, size int64, ct string) *abi.Input {
	in := &abi.Input{Action: "s3:PutObject", Bucket: abi.Bucket{Name: "b"}, Object: abi.Object{Key: key},
		Request: abi.Request{Method: "PUT", Size: size, Headers: map[string]string{}}}
	if ct != "" {
		in.Request.Headers["content-type"] = ct
	}
	return in
}

func TestDecide(t *testing.T) {
	for _, c := range cases {
		res, err := sdktest.Run(decide, c.in, []byte(testConf))
		if err != nil || res.Verdict != c.verdict || res.Reason != c.reason {
			t.Errorf("%s: %+v, %v; want %v %q", c.name, res, err, c.verdict, c.reason)
		}
	}
	res, _ := sdktest.Run(decide, put("a", 10, ""), []byte(`{"max_byte": 1}`))
	if res.Verdict != abi.Deny || !strings.Contains(res.Reason, "bad config") {
		t.Errorf("bad config: %+v", res)
	}
}

// TestWasm builds the plugin and runs it in the real host, and checks that a bad config is
// refused at load.
func TestWasm(t *testing.T) {
	wasm := pluginstest.Build(t, ".")
	ctx := context.Background()
	dir := pluginstest.WriteDir(t, `{"plugins":[{"name":"guard","wasm":"guard.wasm","timeout":"1s","config":`+testConf+`}]}`,
		map[string][]byte{"guard.wasm": wasm})
	d, err := plugins.LoadDir(ctx, dir, plugins.Options{CacheDir: pluginstest.CacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(ctx)
	for _, c := range cases {
		got, err := d.Set().Decide(ctx, c.in)
		want := plugins.Decision{Verdict: c.verdict, Reason: c.reason}
		if c.verdict == abi.Deny {
			want.Plugin = "guard"
		}
		if err != nil || got != want {
			t.Errorf("%s: %+v, %v; want %+v", c.name, got, err, want)
		}
	}

	bad := pluginstest.WriteDir(t, `{"plugins":[{"name":"guard","wasm":"guard.wasm","config":{"max_bytes":"1k"}}]}`,
		map[string][]byte{"guard.wasm": wasm})
	_, err = plugins.LoadDir(ctx, bad, plugins.Options{CacheDir: pluginstest.CacheDir(t)})
	if !errors.Is(err, plugins.ErrFault) || !strings.Contains(err.Error(), "guard: bad config") {
		t.Errorf("bad config loaded: %v", err)
	}
}
