package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/weirproject/weir/examples/plugins/readonlytest"
	"github.com/weirproject/weir/gateway/gatewaytest"
	"github.com/weirproject/weir/plugins"
	"github.com/weirproject/weir/plugins/pluginstest"
	"github.com/weirproject/weir/sdk/abi"
)

// guideBlock is one sh block of docs/plugins.md. A block preceded by
// `<!-- guide: FLOW requires: TOOL... -->` belongs to FLOW and needs those programs; the others
// belong to the Go flow. Each flow runs in an empty directory of its own.
type guideBlock struct {
	flow   string
	tools  []string
	script string
}

var guideBlockRE = regexp.MustCompile("(?s)(?:<!-- guide: ([a-z]+)(?: requires: ([^>]*?))? -->\n)?```sh\n(.*?)```")

func guideBlocks(t *testing.T) []guideBlock {
	doc, err := os.ReadFile("docs/plugins.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []guideBlock
	for _, m := range guideBlockRE.FindAllStringSubmatch(string(doc), -1) {
		b := guideBlock{flow: m[1], tools: strings.Fields(m[2]), script: m[3]}
		if b.flow == "" {
			b.flow = "go"
		}
		blocks = append(blocks, b)
	}
	return blocks
}

// authorEnv is a plugin author's machine: the weir binary and Go on PATH (besides the system's
// programs), no weir checkout, no module proxy, no workspace.
func authorEnv(t *testing.T) []string {
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "GOFLAGS" && k != "PATH" && k != "GOWORK" && k != "GOPROXY" {
			env = append(env, kv)
		}
	}
	path := filepath.Dir(weirBinary) + string(os.PathListSeparator) + filepath.Join(runtime.GOROOT(), "bin") +
		string(os.PathListSeparator) + os.Getenv("PATH")
	return append(env, "PATH="+path, "GOPROXY=off", "GOWORK=off", "GOTOOLCHAIN=local", "CGO_ENABLED=0")
}

// runGuideScript runs script with bash in dir and returns what it printed.
func runGuideScript(t *testing.T, dir string, env []string, script string) string {
	t.Helper()
	cmd := exec.Command("bash", "-c", "set -euo pipefail\n"+script)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the guide's commands failed: %v\n%s\n--- commands:\n%s", err, out, script)
	}
	return string(out)
}

// loadsLine is what weir plugin build and weir plugin check print for each plugin that loads.
func loadsLine(name string) string {
	return "weir: plugin " + name + " loads: exports and ABI 1.1 checked, first instance started"
}

// TestPluginAuthorGuide runs docs/plugins.md as a plugin author would, from empty folders with
// only the weir binary: the Go flow's blocks in order up to `weir --plugins`, which the test
// starts itself (on a loopback port) and talks S3 to; and each other language's flow, when its
// tools are installed, ending in `weir plugin check`, then loaded into the host here.
func TestPluginAuthorGuide(t *testing.T) {
	if testing.Short() {
		t.Skip("builds plugins from scratch; skipped with -short")
	}
	flows := map[string][]guideBlock{}
	var order []string
	for _, b := range guideBlocks(t) {
		if flows[b.flow] == nil {
			order = append(order, b.flow)
		}
		flows[b.flow] = append(flows[b.flow], b)
	}
	for _, want := range []string{"go", "wat", "c", "assemblyscript"} {
		if flows[want] == nil {
			t.Errorf("docs/plugins.md has no %s blocks", want)
		}
	}
	for _, flow := range order {
		t.Run(flow, func(t *testing.T) {
			for _, b := range flows[flow] {
				for _, tool := range b.tools {
					pluginstest.RequireTool(t, tool)
				}
			}
			if flow == "go" {
				guideGo(t, flows[flow])
				return
			}
			work := t.TempDir()
			var script strings.Builder
			for _, b := range flows[flow] {
				script.WriteString(b.script)
			}
			if out := runGuideScript(t, work, authorEnv(t), script.String()); !strings.Contains(out, loadsLine("readonly")) {
				t.Errorf("weir plugin check did not say %q:\n%s", loadsLine("readonly"), out)
			}
			readonlytest.CheckDir(t, filepath.Join(work, "plugins"))
			fi, err := os.Stat(filepath.Join(work, "plugins", "readonly.wasm"))
			if err != nil {
				t.Fatal(err)
			}
			// The sizes docs/plugins.md gives.
			if size, want := fi.Size(), guideSizes[flow]; size < want[0] || size > want[1] {
				t.Errorf("the %s module is %d bytes; the guide says %d–%d", flow, size, want[0], want[1])
			}
		})
	}
}

// guideSizes bounds each language's module, as the guide's table states its size.
var guideSizes = map[string][2]int64{"wat": {405, 405}, "c": {1, 1023}, "assemblyscript": {3000, 5000}}

// The guide's sources for other languages are the examples', so that the examples' own tests
// and the guide cannot drift apart.
func TestPluginGuideSourcesAreTheExamples(t *testing.T) {
	sources := map[string]string{
		"readonly.wat": "examples/plugins/wat-readonly/plugin.wat",
		"readonly.c":   "examples/plugins/c-readonly/readonly.c",
		"readonly.ts":  "examples/plugins/as-readonly/readonly.ts",
	}
	doc, err := os.ReadFile("docs/plugins.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, example := range sources {
		m := regexp.MustCompile("(?s)cat > " + regexp.QuoteMeta(name) + " <<'EOF'\n(.*?\n)EOF\n").FindSubmatch(doc)
		want, err := os.ReadFile(example)
		if err != nil {
			t.Fatal(err)
		}
		if m == nil || string(m[1]) != string(want) {
			t.Errorf("docs/plugins.md's %s is not %s", name, example)
		}
	}
}

// guideGo runs the Go flow: every block before `weir --plugins`, then that server, then the
// requests the guide describes.
func guideGo(t *testing.T, blocks []guideBlock) {
	work, env := t.TempDir(), authorEnv(t)
	var script strings.Builder
	var serve []string
	for _, b := range blocks {
		if line := strings.TrimSpace(b.script); strings.HasPrefix(line, "weir --plugins ") {
			serve = strings.Fields(line)[1:]
			break
		}
		script.WriteString(b.script)
	}
	if serve == nil {
		t.Fatal("the guide has no `weir --plugins` block")
	}
	if out := runGuideScript(t, work, env, script.String()); !strings.Contains(out, loadsLine("quota")) {
		t.Errorf("weir plugin build did not say %q:\n%s", loadsLine("quota"), out)
	}

	stderr := &gatewaytest.SyncBuffer{}
	p := startWeirWith(t, work, append(serve, "--addr", "127.0.0.1:0", "--data", filepath.Join(work, "data")),
		append(env, testEnv()...), stderr)
	if want := `msg="plugins loaded" dir=./plugins count=1 plugins=[quota]`; !strings.Contains(stderr.String(), want) {
		t.Errorf("no %s in weir's log:\n%s", want, stderr)
	}
	c, ctx := p.client(), context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("media")}); err != nil {
		t.Fatal(err)
	}
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String("big"), Body: bytes.NewReader(make([]byte, 2<<20))})
	var ae smithy.APIError
	var re *smithyhttp.ResponseError
	if !errors.As(err, &ae) || !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusForbidden || ae.ErrorCode() != "AccessDenied" ||
		!strings.Contains(ae.ErrorMessage(), "uploads to media are limited to 1048576 bytes") {
		t.Errorf("a 2 MiB PUT to media: %v; want 403 AccessDenied saying the limit", err)
	}
	if _, err := c.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String("media"),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("concurrency"), Value: aws.String("strict")}}}}); err != nil {
		t.Fatal(err)
	}
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String("a"), Body: strings.NewReader("x")})
	if !errors.As(err, &ae) || !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusPreconditionRequired || ae.ErrorCode() != "PreconditionRequired" {
		t.Errorf("an unconditional PUT to a strict media bucket: %v; want 428 PreconditionRequired", err)
	}
	out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String("a"), Body: strings.NewReader("x"), IfNoneMatch: aws.String("*")})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := awsmiddleware.GetRawResponse(out.ResultMetadata).(*smithyhttp.Response)
	if raw == nil || raw.Header.Get("x-weir-decided-by") != "plugin:quota" {
		t.Errorf("a conditional PUT to a strict media bucket did not answer x-weir-decided-by: plugin:quota")
	}
}

// startWeirWith runs the binary with args in dir, its log into stderr, and waits until it serves.
func startWeirWith(t *testing.T, dir string, args, env []string, stderr io.Writer) *weirProcess {
	t.Helper()
	cmd := exec.Command(weirBinary, args...)
	cmd.Dir, cmd.Env, cmd.Stderr = dir, env, stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &weirProcess{cmd: cmd, exited: make(chan error, 1), accessKey: testAccessKey, secretKey: testSecretKey}
	sc := bufio.NewScanner(out)
	for p.endpoint == "" && sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "weir: S3 endpoint "); ok {
			p.endpoint = strings.Fields(line)[0]
		}
	}
	go func() { io.Copy(io.Discard, out) }()
	go func() { p.exited <- cmd.Wait() }()
	if p.endpoint == "" {
		cmd.Process.Kill()
		t.Fatalf("weir %s did not start:\n%s", strings.Join(args, " "), stderr)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
		}
	})
	return p
}

// TestPluginNewChecksGo: `weir plugin new` stops, writing nothing, when the go on PATH is too
// old to build a plugin, and says which Go it found and which it needs.
func TestPluginNewChecksGo(t *testing.T) {
	fake := t.TempDir()
	if err := os.WriteFile(filepath.Join(fake, "go"), []byte("#!/bin/sh\necho go1.22.5\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	cmd := exec.Command(weirBinary, "plugin", "new", "quota")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PATH="+fake+string(os.PathListSeparator)+"/usr/bin:/bin")
	out, err := cmd.CombinedOutput()
	if want := "weir plugin: " + filepath.Join(fake, "go") + " is go1.22.5; building a Go plugin needs Go 1.24 or later (//go:wasmexport)"; err == nil || !strings.Contains(string(out), want) {
		t.Errorf("weir plugin new with Go 1.22: %v\n%s\nwant %s", err, out, want)
	}
	if _, err := os.Stat(filepath.Join(work, "quota")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("weir plugin new wrote quota/ although it failed: %v", err)
	}
	cmd = exec.Command(weirBinary, "plugin", "new", "quota")
	cmd.Dir, cmd.Env = work, append(os.Environ(), "PATH=/nonexistent")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "no go command on PATH: building a Go plugin needs Go 1.24 or later") {
		t.Errorf("weir plugin new without Go: %v\n%s", err, out)
	}
}

// TestPluginNewStarter: the module `weir plugin new` writes passes its own test and builds
// into a plugin that weir loads, with no module proxy.
func TestPluginNewStarter(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a plugin; skipped with -short")
	}
	work := t.TempDir()
	runGuideScript(t, work, authorEnv(t), "weir plugin new starter && cd starter && test -z \"$(gofmt -l .)\" && go vet ./... && go test ./... && weir plugin build")
	ctx := context.Background()
	d, err := plugins.LoadDir(ctx, filepath.Join(work, "starter"), plugins.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(ctx)
	in := &abi.Input{Bucket: abi.Bucket{Name: "b"}, Object: abi.Object{Key: "app.log"}, Request: abi.Request{Method: "DELETE"}}
	got, err := d.Set().Decide(ctx, in)
	if want := (plugins.Decision{Verdict: abi.Deny, Reason: "logs are kept: app.log may not be deleted", Plugin: "starter"}); err != nil || got != want {
		t.Errorf("the starter plugin: %+v, %v; want %+v", got, err, want)
	}
}

// TestPluginHelp: `weir plugin -h` answers with the commands, not an error.
func TestPluginHelp(t *testing.T) {
	out, err := exec.Command(weirBinary, "plugin", "-h").CombinedOutput()
	for _, want := range []string{"weir plugin new NAME", "weir plugin build [DIR]", "weir plugin check DIR", "weir plugin c-header"} {
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("weir plugin -h: %v, no %q in\n%s", err, want, out)
		}
	}
	if out, err := exec.Command(weirBinary, "plugin", "nwe", "x").CombinedOutput(); err == nil || !strings.Contains(string(out), "usage:") {
		t.Errorf("weir plugin nwe x: %v\n%s", err, out)
	}
}
