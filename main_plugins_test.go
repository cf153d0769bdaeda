package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/weirproject/weir/plugins/pluginstest"
)

// TestPluginsFlag: `weir --plugins DIR` runs the plugins in DIR/plugins.json before the policy,
// picks up a valid change without a restart, and rejects a change with a bad module while the
// previous set keeps serving.
func TestPluginsFlag(t *testing.T) {
	byKey := pluginstest.Build(t, "examples/plugins/by-key")
	readonly, err := os.ReadFile("examples/plugins/wat-readonly/plugin.wasm")
	if err != nil {
		t.Fatal(err)
	}
	dir := pluginstest.WriteDir(t, `{"plugins": [{"name": "by-key", "wasm": "by-key.wasm"}]}`,
		map[string][]byte{"by-key.wasm": byKey, "readonly.wasm": readonly})
	data := t.TempDir()
	p := startWeir(t, data, append(testEnv(), "WEIR_PLUGINS="+dir)...)
	c := p.client()
	ctx := context.Background()
	for _, b := range []string{"photos", "archive-1"} {
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String("a.json"), Body: strings.NewReader("{}")})
	if err == nil || !strings.Contains(err.Error(), "PreconditionRequired") {
		t.Fatalf("by-key should make .json keys etag-guarded: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(data, "plugin-cache")); len(entries) == 0 {
		t.Fatal("no compilation cache on disk")
	}

	// A change adding the read-only plugin is picked up...
	os.WriteFile(filepath.Join(dir, "plugins.json"), []byte(`{"plugins": [{"name": "by-key", "wasm": "by-key.wasm"}, {"name": "readonly", "wasm": "readonly.wasm"}]}`), 0o644)
	denied := false
	for deadline := time.Now().Add(10 * time.Second); !denied && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("archive-1"), Key: aws.String("k"), Body: strings.NewReader("x")})
		denied = err != nil && strings.Contains(err.Error(), "read-only")
	}
	if !denied {
		t.Fatal("the added plugin was not picked up")
	}
	// ...and one naming a module that is not wasm is rejected: the previous set keeps serving.
	os.WriteFile(filepath.Join(dir, "junk.wasm"), []byte("not wasm"), 0o644)
	os.WriteFile(filepath.Join(dir, "plugins.json"), []byte(`{"plugins": [{"name": "junk", "wasm": "junk.wasm"}]}`), 0o644)
	time.Sleep(2500 * time.Millisecond) // two reload rounds
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("archive-1"), Key: aws.String("k"), Body: strings.NewReader("x")})
	if err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("after a rejected change the previous plugins should still serve: %v", err)
	}
	resp, err := http.Get(p.endpoint + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz after a rejected plugin change: %v", err)
	}
	resp.Body.Close()
}
