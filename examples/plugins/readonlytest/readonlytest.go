// Package readonlytest checks a build of the read-only example plugin, in whichever language it
// was written (wat-readonly, c-readonly, the AssemblyScript one in docs/plugins.md): loaded in
// the real host, it must deny object writes in archive-* buckets and pass the rest.
package readonlytest

import (
	"context"
	"strings"
	"testing"

	"github.com/weirproject/weir/plugins"
	"github.com/weirproject/weir/plugins/pluginstest"
	"github.com/weirproject/weir/sdk/abi"
)

// Reason is the read-only plugin's deny reason.
const Reason = "objects in archive-* buckets are read-only"

// Check loads wasm as the plugin "readonly" (8 pages, 512 KiB, of memory at most: the big record needs 4 more than the C build starts with) and checks its decisions.
func Check(t *testing.T, wasm []byte) {
	t.Helper()
	CheckDir(t, pluginstest.WriteDir(t, `{"plugins":[{"name":"readonly","wasm":"readonly.wasm","memory_pages":8}]}`,
		map[string][]byte{"readonly.wasm": wasm}))
}

// CheckDir loads a plugins directory whose plugin "readonly" is a build of the example, and
// checks its decisions.
func CheckDir(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	d, err := plugins.LoadDir(ctx, dir, plugins.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(ctx)
	deny := plugins.Decision{Verdict: abi.Deny, Reason: Reason, Plugin: "readonly"}
	pass := plugins.Decision{Verdict: abi.Pass}
	in := func(method, bucket, key string) *abi.Input {
		return &abi.Input{Bucket: abi.Bucket{Name: bucket}, Object: abi.Object{Key: key}, Request: abi.Request{Method: method}}
	}
	big := in("PUT", "archive-2024", "k")
	big.Request.Headers = map[string]string{"x-amz-meta-pad": strings.Repeat("x", 200_000)} // the record outgrows the first page
	for _, c := range []struct {
		in   *abi.Input
		want plugins.Decision
	}{
		{in("PUT", "archive-2024", "a.txt"), deny},
		{in("DELETE", "archive-2024", "a.txt"), deny},
		{in("POST", "archive-", "a.txt"), deny},
		{big, deny},
		{big, deny}, // again, on the instance that grew its memory
		{in("GET", "archive-2024", "a.txt"), pass},
		{in("HEAD", "archive-2024", "a.txt"), pass},
		{in("PUT", "archive-2024", ""), pass}, // CreateBucket
		{in("PUT", "archive", "a.txt"), pass},
		{in("PUT", "photos", "a.txt"), pass},
		{in("PUT", "", ""), pass},
	} {
		got, err := d.Set().Decide(ctx, c.in)
		if err != nil || got != c.want {
			t.Errorf("%s %s/%s: %+v, %v; want %+v", c.in.Request.Method, c.in.Bucket.Name, c.in.Object.Key, got, err, c.want)
		}
	}
}
