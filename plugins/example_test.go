package plugins_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/weirproject/weir/plugins"
	"github.com/weirproject/weir/sdk/abi"
)

// Load a plugins directory holding the hand-written WAT example (which denies object writes
// in archive-* buckets) and decide two requests.
func ExampleLoadDir() {
	dir, _ := os.MkdirTemp("", "weir-plugins-")
	defer os.RemoveAll(dir)
	wasm, _ := os.ReadFile("../examples/plugins/wat-readonly/plugin.wasm")
	os.WriteFile(filepath.Join(dir, "readonly.wasm"), wasm, 0o644)
	os.WriteFile(filepath.Join(dir, "plugins.json"), []byte(`{"plugins": [
		{"name": "readonly", "wasm": "readonly.wasm", "buckets": ["*"], "memory_pages": 4}
	]}`), 0o644)

	ctx := context.Background()
	d, err := plugins.LoadDir(ctx, dir, plugins.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close(ctx)

	for _, bucket := range []string{"archive-2025", "photos"} {
		dec, err := d.Set().Decide(ctx, &abi.Input{
			Action:  "s3:PutObject",
			Bucket:  abi.Bucket{Name: bucket},
			Object:  abi.Object{Key: "a.txt"},
			Request: abi.Request{Method: "PUT"},
		})
		fmt.Printf("%s: %v %q by %q, err %v\n", bucket, dec.Verdict, dec.Reason, dec.Plugin, err)
	}
	// Output:
	// archive-2025: deny "objects in archive-* buckets are read-only" by "readonly", err <nil>
	// photos: pass "" by "", err <nil>
}
