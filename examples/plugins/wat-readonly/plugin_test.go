// Package readonly tests the hand-written WAT plugin: the checked-in plugin.wasm must be what
// plugin.wat assembles to (when wat2wasm is installed), and it must run in the real host.
package readonly

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weirproject/weir/plugins"
	"github.com/weirproject/weir/plugins/pluginstest"
	"github.com/weirproject/weir/sdk/abi"
)

func TestCheckedInMatchesSource(t *testing.T) {
	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Skip("wat2wasm not installed (apt-get install wabt); testing the checked-in plugin.wasm only")
	}
	out := filepath.Join(t.TempDir(), "plugin.wasm")
	if b, err := exec.Command(wat2wasm, "plugin.wat", "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	built, _ := os.ReadFile(out)
	checked, _ := os.ReadFile("plugin.wasm")
	if !bytes.Equal(built, checked) {
		t.Fatal("plugin.wasm is stale: run wat2wasm plugin.wat -o plugin.wasm")
	}
}

func TestWasm(t *testing.T) {
	wasm, err := os.ReadFile("plugin.wasm")
	if err != nil {
		t.Fatal(err)
	}
	dir := pluginstest.WriteDir(t, `{"plugins":[{"name":"readonly","wasm":"readonly.wasm","memory_pages":4}]}`,
		map[string][]byte{"readonly.wasm": wasm})
	ctx := context.Background()
	d, err := plugins.LoadDir(ctx, dir, plugins.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(ctx)
	deny := plugins.Decision{Verdict: abi.Deny, Reason: "objects in archive-* buckets are read-only", Plugin: "readonly"}
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
