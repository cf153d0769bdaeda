package main

import (
	"context"
	"testing"

	"github.com/weirproject/weir/plugins"
	"github.com/weirproject/weir/plugins/pluginstest"
	"github.com/weirproject/weir/sdk/abi"
	"github.com/weirproject/weir/sdk/sdktest"
)

var cases = []struct {
	key      string
	verdict  abi.Verdict
	strategy string
}{
	{"locks/build-42", abi.Propose, "lease"},
	{"locks/config.json", abi.Propose, "lease"},
	{"data/report.json", abi.Propose, "etag"},
	{"photo.jpg", abi.Pass, ""},
	{"", abi.Pass, ""},
}

func input(key string) *abi.Input {
	return &abi.Input{Action: "s3:PutObject", Bucket: abi.Bucket{Name: "b"}, Object: abi.Object{Key: key},
		Request: abi.Request{Method: "PUT"}}
}

func TestDecide(t *testing.T) {
	for _, c := range cases {
		res, err := sdktest.Run(decide, input(c.key), nil)
		if err != nil || res.Verdict != c.verdict || res.Strategy != c.strategy {
			t.Errorf("%q: %+v, %v; want %v %q", c.key, res, err, c.verdict, c.strategy)
		}
	}
}

// TestWasm builds the plugin and runs it in the real host.
func TestWasm(t *testing.T) {
	dir := pluginstest.WriteDir(t, `{"plugins":[{"name":"by-key","wasm":"by-key.wasm","timeout":"1s"}]}`,
		map[string][]byte{"by-key.wasm": pluginstest.Build(t, ".")})
	ctx := context.Background()
	d, err := plugins.LoadDir(ctx, dir, plugins.Options{CacheDir: pluginstest.CacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(ctx)
	for _, c := range cases {
		got, err := d.Set().Decide(ctx, input(c.key))
		want := plugins.Decision{Verdict: c.verdict, Strategy: abi.Strategy(c.strategy)}
		if c.verdict != abi.Pass {
			want.Plugin = "by-key"
		}
		if err != nil || got != want {
			t.Errorf("%q: %+v, %v; want %+v", c.key, got, err, want)
		}
	}
}
