// Package pluginexamples checks that the example manifest, plugins.json, loads with the three
// example plugins and decides as the README says.
package pluginexamples

import (
	"context"
	"os"
	"testing"

	"github.com/weirproject/weir/plugins"
	"github.com/weirproject/weir/plugins/pluginstest"
	"github.com/weirproject/weir/sdk/abi"
)

func TestManifest(t *testing.T) {
	manifest, err := os.ReadFile("plugins.json")
	if err != nil {
		t.Fatal(err)
	}
	readonly, err := os.ReadFile("wat-readonly/plugin.wasm")
	if err != nil {
		t.Fatal(err)
	}
	dir := pluginstest.WriteDir(t, string(manifest), map[string][]byte{
		"by-key.wasm":   pluginstest.Build(t, "by-key"),
		"guard.wasm":    pluginstest.Build(t, "guard"),
		"readonly.wasm": readonly,
	})
	ctx := context.Background()
	d, err := plugins.LoadDir(ctx, dir, plugins.Options{CacheDir: pluginstest.CacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(ctx)
	put := func(bucket, key string, size int64) *abi.Input {
		return &abi.Input{Action: "s3:PutObject", Bucket: abi.Bucket{Name: bucket}, Object: abi.Object{Key: key},
			Request: abi.Request{Method: "PUT", Size: size}}
	}
	for _, c := range []struct {
		in   *abi.Input
		want plugins.Decision
	}{
		{put("archive-2025", "locks/a", 1), plugins.Decision{Verdict: abi.Deny, Reason: "objects in archive-* buckets are read-only", Plugin: "readonly"}},
		{put("photos", "locks/a", 1), plugins.Decision{Verdict: abi.Propose, Strategy: "lease", Plugin: "by-key"}},
		{put("photos", "meta.json", 1), plugins.Decision{Verdict: abi.Propose, Strategy: "etag", Plugin: "by-key"}},
		{put("photos", "locks/huge", 2<<20), plugins.Decision{Verdict: abi.Deny, Reason: "uploads are limited to 1048576 bytes", Plugin: "guard"}},
		{put("photos", "a.jpg", 1), plugins.Decision{Verdict: abi.Pass}},
	} {
		got, err := d.Set().Decide(ctx, c.in)
		if err != nil || got != c.want {
			t.Errorf("%s/%s: %+v, %v; want %+v", c.in.Bucket.Name, c.in.Object.Key, got, err, c.want)
		}
	}
}
