package plugins_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/weirproject/weir/plugins"
	"github.com/weirproject/weir/sdk/abi"
)

// TestPluginAuthorGuide runs every sh block of docs/plugins.md, in order, in an empty
// directory, as a plugin author would; then it loads the plugins directory they made with the
// real host and checks the plugin decides as the guide says.
func TestPluginAuthorGuide(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module from scratch; skipped with -short")
	}
	guide, err := os.ReadFile("../docs/plugins.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(string(guide), -1)
	if len(blocks) < 4 {
		t.Fatalf("the guide has %d sh blocks, want the build steps", len(blocks))
	}
	weir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for _, b := range blocks {
		script.WriteString(b[1])
	}
	work := t.TempDir()
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "WEIR="+weir, "CGO_ENABLED=0", "GOFLAGS=-mod=mod",
		"PATH="+filepath.Join(runtime.GOROOT(), "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the guide's commands failed: %v\n%s", err, out)
	}

	ctx := context.Background()
	d, err := plugins.LoadDir(ctx, filepath.Join(work, "plugins"), plugins.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(ctx)
	put := func(bucket string, size int64, tags map[string]string) *abi.Input {
		return &abi.Input{Action: "s3:PutObject", Bucket: abi.Bucket{Name: bucket, Tags: tags}, Object: abi.Object{Key: "k"},
			Request: abi.Request{Method: "PUT", Size: size}}
	}
	for _, c := range []struct {
		in   *abi.Input
		want plugins.Decision
	}{
		{put("media", 2<<20, nil), plugins.Decision{Verdict: abi.Deny, Reason: "uploads to media are limited to 1048576 bytes", Plugin: "quota"}},
		{put("media", 10, map[string]string{"concurrency": "strict"}), plugins.Decision{Verdict: abi.Propose, Strategy: "etag", Plugin: "quota"}},
		{put("media", 10, nil), plugins.Decision{Verdict: abi.Pass}},
		{put("other", 2<<20, nil), plugins.Decision{Verdict: abi.Pass}}, // the manifest applies it to media only
	} {
		got, err := d.Set().Decide(ctx, c.in)
		if err != nil || got != c.want {
			t.Errorf("%s %d bytes %v: %+v %v, want %+v", c.in.Bucket.Name, c.in.Request.Size, c.in.Bucket.Tags, got, err, c.want)
		}
	}
}
