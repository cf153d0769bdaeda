//go:build linux

package compat_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/weirproject/weir/gateway/gatewaytest"
)

// The browser session: a page on another origin than weir's uses it as a web application
// would, in a real headless Chromium. The bucket's CORS rules (set here with the Go SDK) allow
// the page's origin; the page uploads with a presigned PUT (a preflighted request) and with an
// HTML form POST signed by this test, reads both objects back through CORS, and tries a POST its
// policy does not allow. A frame on a second origin, which the rules do not name, tries to
// upload and read: its preflight is refused and its fetches fail.

// mainPage is the page on the allowed origin; CONFIG is replaced with the test's JSON.
const mainPage = `<!doctype html><html><body><p>weir browser session</p>
<iframe src="EVIL_URL"></iframe>
<script>
const cfg = CONFIG;
` + pageHelpers + `
async function form(fields, bytes, name) {
  const fd = new FormData();
  for (const [k, v] of fields) fd.append(k, v);
  fd.append("file", new Blob([bytes]), name);
  return fetch(cfg.postURL, {method: "POST", body: fd});
}
(async () => {
  const r = {};
  const putData = unb64(cfg.putData), postData = unb64(cfg.postData);
  r.put = await step(async () => {
    const res = await fetch(cfg.putURL, {method: "PUT", body: putData, headers: {"Content-Type": "application/octet-stream"}});
    return {status: res.status, etag: res.headers.get("ETag")};
  });
  r.post = await step(async () => {
    const res = await form(cfg.postFields, postData, "photo.bin");
    return {status: res.status, body: await res.text()};
  });
  for (const [name, url, want] of [["getPut", cfg.getPutURL, putData], ["getPost", cfg.getPostURL, postData]]) {
    r[name] = await step(async () => {
      const res = await fetch(url);
      const got = new Uint8Array(await res.arrayBuffer());
      return {status: res.status, size: got.length, same: same(got, want), etag: res.headers.get("ETag")};
    });
  }
  r.tooLarge = await step(async () => {
    const res = await form(cfg.smallFields, postData, "big.bin");
    return {status: res.status, body: await res.text()};
  });
  await fetch("/result", {method: "POST", body: JSON.stringify(r)});
})();
</script></body></html>`

// evilPage runs on an origin the rules do not allow.
const evilPage = `<!doctype html><html><body><script>
const cfg = CONFIG;
` + pageHelpers + `
(async () => {
  const r = {};
  r.put = await step(async () => {
    const res = await fetch(cfg.evilPutURL, {method: "PUT", body: "evil", headers: {"Content-Type": "application/octet-stream"}});
    return {status: res.status};
  });
  r.get = await step(async () => {
    const res = await fetch(cfg.getPutURL);
    return {status: res.status, body: await res.text()};
  });
  await fetch("/result-evil", {method: "POST", body: JSON.stringify(r)});
})();
</script></body></html>`

const pageHelpers = `
function unb64(s) { const bin = atob(s); const a = new Uint8Array(bin.length); for (let i = 0; i < bin.length; i++) a[i] = bin.charCodeAt(i); return a; }
function same(a, b) { if (a.length !== b.length) return false; for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false; return true; }
async function step(fn) { try { return await fn(); } catch (e) { return {error: String(e)}; } }
`

// stepResult is what the page reports of one step: an HTTP answer, or the error fetch threw
// (a request CORS refused).
type stepResult struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
	ETag   string `json:"etag"`
	Size   int    `json:"size"`
	Same   bool   `json:"same"`
	Error  string `json:"error"`
}

func TestBrowser(t *testing.T) {
	chromium := requireTool(t, "chromium")
	ts := gatewaytest.Start(t, gatewaytest.Options{})
	ctx := context.Background()
	c := ts.Root()
	bucket := aws.String("browser")
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: bucket}); err != nil {
		t.Fatal(err)
	}

	results := make(chan []byte, 1)
	evilResults := make(chan []byte, 1)
	// The pages name the server's own origin, so they are written once it listens.
	var pagesMu sync.Mutex
	var page, evil []byte
	pages := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pagesMu.Lock()
		main, other := page, evil
		pagesMu.Unlock()
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html")
			w.Write(main)
		case "/evil.html":
			w.Header().Set("Content-Type", "text/html")
			w.Write(other)
		case "/result", "/result-evil":
			body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			ch := results
			if r.URL.Path == "/result-evil" {
				ch = evilResults
			}
			select {
			case ch <- body:
			default:
			}
		case "/favicon.ico":
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(pages.Close)
	origin := pages.URL // http://127.0.0.1:port
	evilOrigin := strings.Replace(pages.URL, "127.0.0.1", "localhost", 1)

	_, err := c.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: bucket, CORSConfiguration: &types.CORSConfiguration{CORSRules: []types.CORSRule{{
		AllowedOrigins: []string{origin}, AllowedMethods: []string{"GET", "PUT", "POST"},
		AllowedHeaders: []string{"*"}, ExposeHeaders: []string{"ETag"}, MaxAgeSeconds: aws.Int32(60),
	}}}})
	if err != nil {
		t.Fatal(err)
	}

	rng := rand.New(rand.NewSource(5))
	putData, postData := make([]byte, 300<<10), make([]byte, 200<<10)
	rng.Read(putData)
	rng.Read(postData)
	presign := s3.NewPresignClient(c)
	presigned := func(method, key string) string {
		t.Helper()
		var url string
		var err error
		if method == http.MethodPut {
			p, e := presign.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: bucket, Key: aws.String(key)}, s3.WithPresignExpires(10*time.Minute))
			if e == nil {
				url = p.URL
			}
			err = e
		} else {
			p, e := presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: aws.String(key)}, s3.WithPresignExpires(10*time.Minute))
			if e == nil {
				url = p.URL
			}
			err = e
		}
		if err != nil {
			t.Fatal(err)
		}
		return url
	}
	// A form's fields in order (the file goes last), with its signed policy.
	formFields := func(maxSize int, fields ...[2]string) [][2]string {
		auth := gatewaytest.PostForm(gatewaytest.RootAccessKey, gatewaytest.RootSecretKey, time.Now(), time.Now().Add(10*time.Minute),
			map[string]string{"bucket": "browser"}, []any{"starts-with", "$key", "forms/"},
			[]any{"eq", "$success_action_status", "201"}, []any{"starts-with", "$Content-Type", "image/"},
			[]any{"content-length-range", 1, maxSize})
		for _, name := range []string{"x-amz-algorithm", "x-amz-credential", "x-amz-date", "policy", "x-amz-signature"} {
			fields = append(fields, [2]string{name, auth[name]})
		}
		return fields
	}
	cfg := map[string]any{
		"putURL": presigned(http.MethodPut, "put/object.bin"), "getPutURL": presigned(http.MethodGet, "put/object.bin"),
		"getPostURL": presigned(http.MethodGet, "forms/photo.bin"), "postURL": ts.URL + "/browser",
		"putData": base64.StdEncoding.EncodeToString(putData), "postData": base64.StdEncoding.EncodeToString(postData),
		"postFields":  formFields(1<<20, [2]string{"key", "forms/${filename}"}, [2]string{"success_action_status", "201"}, [2]string{"Content-Type", "image/png"}),
		"smallFields": formFields(1000, [2]string{"key", "forms/${filename}"}, [2]string{"success_action_status", "201"}, [2]string{"Content-Type", "image/png"}),
		"evilPutURL":  presigned(http.MethodPut, "evil/object.bin"),
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pagesMu.Lock()
	page = []byte(strings.NewReplacer("CONFIG", string(js), "EVIL_URL", evilOrigin+"/evil.html").Replace(mainPage))
	evil = []byte(strings.Replace(evilPage, "CONFIG", string(js), 1))
	pagesMu.Unlock()

	stop := startChromium(t, chromium, origin+"/")
	defer stop()
	var r map[string]stepResult
	var e map[string]stepResult
	deadline := time.After(2 * time.Minute)
	for r == nil || e == nil {
		select {
		case b := <-results:
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatalf("the page's report %s: %v", b, err)
			}
		case b := <-evilResults:
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("the frame's report %s: %v", b, err)
			}
		case <-deadline:
			t.Fatalf("the page did not report within 2 minutes (main %v, frame %v)", r, e)
		}
	}
	stop()
	t.Logf("page: %+v\nframe: %+v", r, e)

	if s := r["put"]; s.Status != 200 || s.ETag == "" {
		t.Errorf("presigned PUT from the page: %+v", s)
	}
	if s := r["post"]; s.Status != 201 || !strings.Contains(s.Body, "<Key>forms/photo.bin</Key>") {
		t.Errorf("form POST from the page: %+v", s)
	}
	for _, name := range []string{"getPut", "getPost"} {
		if s := r[name]; s.Status != 200 || !s.Same || s.ETag == "" {
			t.Errorf("%s: the page read back other bytes or no ETag: %+v", name, s)
		}
	}
	if s := r["tooLarge"]; s.Status != 400 || !strings.Contains(s.Body, "EntityTooLarge") {
		t.Errorf("a POST over its content-length-range: %+v", s)
	}
	if s := e["put"]; s.Error == "" {
		t.Errorf("a PUT from an origin the rules do not allow was not refused: %+v", s)
	}
	if s := e["get"]; s.Error == "" {
		t.Errorf("a read from an origin the rules do not allow was not refused: %+v", s)
	}
	// The refusal was the preflight's, and weir has the bytes the page sent, nothing else.
	if n := ts.Metric(t, `weir_requests_total{op="CORSPreflight",status="403"}`); n < 1 {
		t.Errorf("no refused preflight was counted (%v)", n)
	}
	for key, want := range map[string][]byte{"put/object.bin": putData, "forms/photo.bin": postData} {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: aws.String(key)})
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if !bytes.Equal(got, want) {
			t.Errorf("%s: stored %d bytes that differ from the page's %d", key, len(got), len(want))
		}
		if key == "forms/photo.bin" && aws.ToString(out.ContentType) != "image/png" {
			t.Errorf("%s: content type %q", key, aws.ToString(out.ContentType))
		}
	}
	for _, key := range []string{"evil/object.bin", "forms/big.bin"} {
		if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bucket, Key: aws.String(key)}); err == nil {
			t.Errorf("%s was stored", key)
		}
	}
}

// startChromium opens url in a headless Chromium with a profile of its own, and returns how to
// stop it (and its helper processes: its process group).
func startChromium(t *testing.T, chromium, url string) func() {
	t.Helper()
	cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--no-first-run", "--no-default-browser-check", "--disable-dev-shm-usage", "--user-data-dir="+t.TempDir(), url)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() || os.Getenv("WEIR_TEST_DEBUG") != "" {
			fmt.Fprintf(os.Stderr, "chromium output:\n%s\n", log.String())
		}
	}
	t.Cleanup(stop)
	return stop
}
