package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/weirproject/weir/engine"
	"github.com/weirproject/weir/plugins"
	"github.com/weirproject/weir/plugins/pluginstest"
	"github.com/weirproject/weir/sdk/abi"
)

// examplePlugins loads examples/plugins/plugins.json with the three example plugins, built (Go)
// or read (the checked-in WAT build) by the test.
func examplePlugins(t testing.TB) *plugins.Dir {
	t.Helper()
	manifest, err := os.ReadFile("../examples/plugins/plugins.json")
	if err != nil {
		t.Fatal(err)
	}
	readonly, err := os.ReadFile("../examples/plugins/wat-readonly/plugin.wasm")
	if err != nil {
		t.Fatal(err)
	}
	return loadPlugins(t, string(manifest), map[string][]byte{
		"by-key.wasm":   pluginstest.Build(t, "../examples/plugins/by-key"),
		"guard.wasm":    pluginstest.Build(t, "../examples/plugins/guard"),
		"readonly.wasm": readonly,
	})
}

func loadPlugins(t testing.TB, manifest string, files map[string][]byte) *plugins.Dir {
	t.Helper()
	ctx := context.Background()
	d, err := plugins.LoadDir(ctx, pluginstest.WriteDir(t, manifest, files), plugins.Options{CacheDir: pluginstest.CacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(ctx) })
	return d
}

// TestExamplePluginsEndToEnd: what a real S3 client sees with the example plugins loaded.
func TestExamplePluginsEndToEnd(t *testing.T) {
	ts := startServer(t, serverOptions{Plugins: examplePlugins(t)})
	c := ts.root()
	ctx := context.Background()
	mustCreateBucket(t, c, "photos")

	// by-key: *.json is etag-guarded, so a blind write is refused with 428...
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String("meta.json"), Body: strings.NewReader("{}")})
	if httpStatus(err) != http.StatusPreconditionRequired {
		t.Fatalf("blind write of a .json key: %v", err)
	}
	// ...and a conditional one goes through, saying who chose the strategy.
	out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String("meta.json"), Body: strings.NewReader("{}"), IfNoneMatch: aws.String("*")})
	if err != nil {
		t.Fatal(err)
	}
	if h := rawHeaders(out.ResultMetadata); h.Get("x-weir-concurrency") != "etag" || h.Get("x-weir-decided-by") != "plugin:by-key" {
		t.Fatalf("headers of a .json write: %v", h)
	}
	// by-key: locks/ is lease-guarded: once the lock object is leased, a write without the
	// lease id is refused with 412.
	out, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String("locks/a"), Body: strings.NewReader("x")})
	if err != nil {
		t.Fatal(err)
	}
	if h := rawHeaders(out.ResultMetadata); h.Get("x-weir-concurrency") != "lease" || h.Get("x-weir-decided-by") != "plugin:by-key" {
		t.Fatalf("headers of a locks/ write: %v", h)
	}
	// docs/plugins.md: decisions are counted by weir_decisions_total{source="plugin:<name>"}.
	if n := ts.metric(t, `weir_decisions_total{outcome="allow",source="plugin:by-key"}`); n < 2 {
		t.Fatalf(`weir_decisions_total{outcome="allow",source="plugin:by-key"} = %v after two writes the plugin decided`, n)
	}
	if resp, _ := ts.lease(t, "/photos/locks/a", map[string]string{"x-weir-lease-action": "acquire", "x-weir-lease-duration": "-1"}); resp.StatusCode != http.StatusCreated {
		t.Fatalf("acquire: %d", resp.StatusCode)
	}
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String("locks/a"), Body: strings.NewReader("y")})
	if httpStatus(err) != http.StatusPreconditionFailed || apiCode(err) != "LeaseIdMissing" {
		t.Fatalf("write of a leased locks/ key without its lease: %v", err)
	}
	// Other keys: the plugins pass and the bucket's strategy stands.
	out, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String("a.jpg"), Body: strings.NewReader("x")})
	if err != nil {
		t.Fatal(err)
	}
	if h := rawHeaders(out.ResultMetadata); h.Get("x-weir-concurrency") != "last-writer-wins" || h.Get("x-weir-decided-by") != "bucket" {
		t.Fatalf("headers of a plain write: %v", h)
	}

	// guard: over 1 MiB, or an executable, is denied with the plugin's reason.
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String("big.bin"), Body: bytes.NewReader(make([]byte, 2<<20))})
	expectDenied(t, err, "uploads are limited to 1048576 bytes")
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String("x.exe"), Body: strings.NewReader("MZ"), ContentType: aws.String("application/x-msdownload")})
	if apiCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "application/x-msdownload") {
		t.Fatalf("an executable: %v", err)
	}

	// wat-readonly (hand-written WebAssembly): archive-* buckets are read-only.
	mustCreateBucket(t, c, "archive-2025")
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("archive-2025"), Key: aws.String("k"), Body: strings.NewReader("x")})
	expectDenied(t, err, "objects in archive-* buckets are read-only")

	l, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("photos")})
	if err != nil || len(l.Contents) != 3 {
		t.Fatalf("refused writes left objects: %+v %v", l.Contents, err)
	}
	// Operators see each plugin's pool and decisions in /metrics.
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics := string(readAll(t, resp.Body))
	for _, want := range []string{`weir_plugin_resident_bytes{plugin="by-key"}`, `weir_plugin_resident_bytes_max{plugin="guard"} 3.3554432e+07`,
		`weir_plugin_instances{plugin="readonly"}`, `weir_plugin_load_seconds{plugin="by-key"}`, `weir_plugin_faults_total{plugin="guard"} 0`,
		`weir_plugin_calls_total{plugin="guard"}`, `weir_plugin_call_seconds_total{plugin="by-key"}`, `weir_policy_eval_duration_seconds_count`,
		`weir_decisions_total{outcome="deny",source="plugin:guard"} 2`, `weir_decisions_total{outcome="allow",source="plugin:by-key"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestPolicyOverridesPluginProposal: the policy sees the plugins' proposal (input.proposal) and
// has the final word on the strategy and on allow.
func TestPolicyOverridesPluginProposal(t *testing.T) {
	ts := startServer(t, serverOptions{Plugins: examplePlugins(t), Policy: map[string]string{"final.rego": `package weir
default allow := true
strategy := "last-writer-wins" if input.bucket.name == "scratch"
allow := false if {
	input.proposal.strategy == "lease"
	input.bucket.name == "nolocks"
}
reason := sprintf("no lease-guarded keys here (proposed by %s)", [input.proposal.decided_by]) if not allow
`}})
	c := ts.root()
	ctx := context.Background()
	mustCreateBucket(t, c, "scratch")
	mustCreateBucket(t, c, "nolocks")
	out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("scratch"), Key: aws.String("meta.json"), Body: strings.NewReader("{}")})
	if err != nil {
		t.Fatalf("the policy's last-writer-wins should override the plugin's etag: %v", err)
	}
	if h := rawHeaders(out.ResultMetadata); h.Get("x-weir-concurrency") != "last-writer-wins" || h.Get("x-weir-decided-by") != "policy" {
		t.Fatalf("headers: %v", h)
	}
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("nolocks"), Key: aws.String("locks/a"), Body: strings.NewReader("x")})
	expectDenied(t, err, "no lease-guarded keys here (proposed by plugin:by-key)")
}

// TestPluginFaultsFailOnlyTheirRequests: a plugin that traps, runs past its deadline, grows its
// memory past its cap or answers garbage (a 2 KiB reason) fails
// the requests it applies to (keys under k in its bucket) with 503 PluginFailed naming it, while
// 100 concurrent requests on another bucket all succeed.
func TestPluginFaultsFailOnlyTheirRequests(t *testing.T) {
	// The deadline is wall-clock time: the good plugin gets a generous one, because 100
	// concurrent calls on 2 cores wait for the CPU far longer than the default 5 ms.
	modes := pluginstest.Build(t, "../plugins/testdata/guests/modes")
	d := loadPlugins(t, `{"plugins": [
		{"name": "trapper", "wasm": "modes.wasm", "buckets": ["trap-bucket"], "prefixes": ["k"], "config": "panic"},
		{"name": "sleeper", "wasm": "modes.wasm", "buckets": ["slow-bucket"], "prefixes": ["k"], "config": "loop", "timeout": "20ms"},
		{"name": "hog", "wasm": "modes.wasm", "buckets": ["oom-bucket"], "prefixes": ["k"], "config": "oom", "memory_pages": 96},
		{"name": "chatter", "wasm": "modes.wasm", "buckets": ["garbage-bucket"], "prefixes": ["k"], "config": "bigreason"},
		{"name": "fine", "wasm": "modes.wasm", "buckets": ["good-bucket"], "config": "pass", "timeout": "1s"}
	]}`, map[string][]byte{"modes.wasm": modes})
	log := &syncBuffer{}
	ts := startServer(t, serverOptions{Plugins: d, Log: log})
	c := ts.root()
	ctx := context.Background()
	faulty := []struct{ bucket, plugin string }{{"trap-bucket", "trapper"}, {"slow-bucket", "sleeper"}, {"oom-bucket", "hog"}, {"garbage-bucket", "chatter"}}
	for _, b := range []string{"trap-bucket", "slow-bucket", "oom-bucket", "garbage-bucket", "good-bucket"} {
		mustCreateBucket(t, c, b)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("good-bucket"), Key: aws.String(fmt.Sprintf("k%d", i)), Body: strings.NewReader("x")})
			if err != nil {
				errs <- fmt.Errorf("good request %d: %w", i, err)
			}
		}()
		if i%10 == 0 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, f := range faulty {
					req := ts.signed(t, http.MethodPut, "/"+f.bucket+"/k", []byte("x"), nil, "", time.Now())
					resp, body, _ := ts.do(t, req)
					if resp.StatusCode != http.StatusServiceUnavailable || body.Code != "PluginFailed" ||
						resp.Header.Get("x-weir-plugin") != f.plugin || !strings.Contains(body.Message, "plugin "+f.plugin+" failed") {
						errs <- fmt.Errorf("%s: %d %+v %v", f.bucket, resp.StatusCode, body, resp.Header)
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	l, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("good-bucket")})
	if err != nil || len(l.Contents) != 100 {
		t.Fatalf("good bucket after the faults: %d objects, %v", len(l.Contents), err)
	}
	for _, f := range faulty {
		b := f.bucket
		l, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(b)})
		if err != nil || len(l.Contents) != 0 {
			t.Fatalf("%s: a failed plugin let a write through: %+v %v", b, l.Contents, err)
		}
		// The decision log says it was an error, whose, and that the client got 503.
		if want := "bucket=" + b + " key=k principal=root outcome=error decider=plugin:" + f.plugin + " status=503"; !strings.Contains(log.String(), want) {
			t.Errorf("the decision log lacks %q", want)
		}
	}
	// /metrics counts the faults by plugin and kind: each plugin's ten, under the kind it
	// mostly shows (a loaded machine may turn a call into a timeout now and then).
	for _, f := range []struct{ plugin, kind string }{{"trapper", "trap"}, {"sleeper", "timeout"}, {"hog", "memory"}, {"chatter", "output"}} {
		total := 0.0
		for _, kind := range []string{"trap", "timeout", "memory", "output"} {
			total += max(0, ts.metric(t, `weir_plugin_request_faults_total{kind="`+kind+`",plugin="`+f.plugin+`"}`))
		}
		if n := ts.metric(t, `weir_plugin_request_faults_total{kind="`+f.kind+`",plugin="`+f.plugin+`"}`); total != 10 || n < 1 {
			t.Errorf("%s's faults in /metrics: %v in all, %v of kind %s; want 10, at least one of kind %s", f.plugin, total, n, f.kind, f.kind)
		}
	}
}

// TestPluginReadsOnlyWhatItDeclares: a plugin's manifest "reads" decides what weir fills in for
// it: without "object" the object's metadata is not read (object.exists stays false), without
// "headers" no header is copied. Absent, the plugin gets everything. The echo guest denies
// with its input as JSON, so the client's 403 shows what the plugin saw.
func TestPluginReadsOnlyWhatItDeclares(t *testing.T) {
	modes := pluginstest.Build(t, "../plugins/testdata/guests/modes")
	d := loadPlugins(t, `{"plugins": [
		{"name": "all", "wasm": "modes.wasm", "buckets": ["reads-all"], "config": "echo"},
		{"name": "object", "wasm": "modes.wasm", "buckets": ["reads-object"], "config": "echo", "reads": ["object"]},
		{"name": "none", "wasm": "modes.wasm", "buckets": ["reads-none"], "config": "echo", "reads": []}
	]}`, map[string][]byte{"modes.wasm": modes})
	ts := startServer(t, serverOptions{Plugins: d})
	c := ts.root()
	for _, tc := range []struct {
		bucket          string
		exists, headers bool
	}{{"reads-all", true, true}, {"reads-object", true, false}, {"reads-none", false, false}} {
		mustCreateBucket(t, c, tc.bucket)
		if _, err := ts.Engine.PutObject(context.Background(), tc.bucket, "k", strings.NewReader("v"), engine.PutOptions{Size: 1}); err != nil {
			t.Fatal(err)
		}
		resp, e, _ := ts.do(t, ts.signed(t, http.MethodPut, "/"+tc.bucket+"/k", []byte("v2"), nil, "", time.Now()))
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: %d %s", tc.bucket, resp.StatusCode, e.Code)
		}
		var seen abi.Input
		if err := json.Unmarshal([]byte(e.Message), &seen); err != nil {
			t.Fatalf("%s: the echo is not the input: %v (%q)", tc.bucket, err, e.Message)
		}
		if seen.Object.Key != "k" || seen.Object.Exists != tc.exists || (seen.Request.Headers["x-amz-date"] != "") != tc.headers {
			t.Errorf("%s: the plugin saw object %+v, headers %v", tc.bucket, seen.Object, seen.Request.Headers)
		}
	}
}

// TestPluginDecidesOnObjectTags: a plugin reads the object's tags (ABI 1.1) and refuses writes
// and deletes of objects tagged locked=true; the tag's owner unlocks by removing it.
func TestPluginDecidesOnObjectTags(t *testing.T) {
	modes := pluginstest.Build(t, "../plugins/testdata/guests/modes")
	d := loadPlugins(t, `{"plugins": [
		{"name": "tag-lock", "wasm": "modes.wasm", "buckets": ["tag-locked"], "config": "object-tag:locked=true", "reads": ["object"]}
	]}`, map[string][]byte{"modes.wasm": modes})
	ts := startServer(t, serverOptions{Plugins: d})
	c := ts.root()
	ctx := context.Background()
	mustCreateBucket(t, c, "tag-locked")
	b := aws.String("tag-locked")
	put := func(key, body string, tagging *string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String(key), Body: strings.NewReader(body), Tagging: tagging})
		return err
	}
	if err := put("report", "v1", aws.String("locked=true")); err != nil {
		t.Fatalf("creating the locked object (no tags yet when the plugin looks): %v", err)
	}
	if err := put("notes", "v1", aws.String("locked=false")); err != nil {
		t.Fatal(err)
	}
	err := put("report", "v2", nil)
	if apiCode(err) != "AccessDenied" || !strings.Contains(apiMessage(err), "object tagged locked=true") {
		t.Fatalf("overwriting a locked object: %v", err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: aws.String("report")}); apiCode(err) != "AccessDenied" {
		t.Fatalf("deleting a locked object: %v", err)
	}
	if err := put("notes", "v2", nil); err != nil {
		t.Fatalf("an object tagged otherwise: %v", err)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("report")}); err != nil {
		t.Fatalf("reading a locked object: %v", err)
	}
	if _, err := c.DeleteObjectTagging(ctx, &s3.DeleteObjectTaggingInput{Bucket: b, Key: aws.String("report")}); err != nil {
		t.Fatal(err)
	}
	if err := put("report", "v2", nil); err != nil {
		t.Fatalf("once untagged: %v", err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("report")})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(readAll(t, out.Body)); got != "v2" {
		t.Fatalf("stored %q", got)
	}
}
