package plugins_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirproject/weir/internal/testlog"
	"github.com/weirproject/weir/plugins"
	"github.com/weirproject/weir/plugins/pluginstest"
	"github.com/weirproject/weir/sdk/abi"
)

// cacheDir is a compilation cache shared by the tests, so each module compiles once per run.
var cacheDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "weir-plugins-cache-")
	if err != nil {
		panic(err)
	}
	cacheDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// modes is the shared test guest; see testdata/guests/modes.
func modes(t testing.TB) []byte { return pluginstest.Build(t, "testdata/guests/modes") }

// entry is one manifest entry of the modes guest.
type entry struct {
	Name        string   `json:"name"`
	Wasm        string   `json:"wasm"`
	Order       int      `json:"order,omitempty"`
	Buckets     []string `json:"buckets,omitempty"`
	Prefixes    []string `json:"prefixes,omitempty"`
	Config      any      `json:"config,omitempty"`
	Timeout     string   `json:"timeout,omitempty"`
	MemoryPages int      `json:"memory_pages,omitempty"`
	PoolSize    int      `json:"pool_size,omitempty"`
	FailOpen    bool     `json:"fail_open,omitempty"`
	Grants      []string `json:"grants,omitempty"`
}

func manifest(t testing.TB, es ...entry) string {
	for i := range es {
		if es[i].Wasm == "" {
			es[i].Wasm = "modes.wasm"
		}
	}
	b, err := json.Marshal(map[string]any{"plugins": es})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// load writes a directory with the modes guest (plus extra files) and loads it.
func load(t testing.TB, es ...entry) (*plugins.Dir, *testlog.Buffer) {
	t.Helper()
	dir := pluginstest.WriteDir(t, manifest(t, es...), map[string][]byte{"modes.wasm": modes(t)})
	logs := &testlog.Buffer{}
	d, err := plugins.LoadDir(context.Background(), dir, plugins.Options{
		CacheDir: cacheDir,
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	return d, logs
}

func req(bucket, key string) *abi.Input {
	return &abi.Input{Action: "s3:PutObject", Bucket: abi.Bucket{Name: bucket}, Object: abi.Object{Key: key},
		Request: abi.Request{Method: "PUT", Size: 1}}
}

func TestDecideOrderAndMatching(t *testing.T) {
	d, _ := load(t,
		entry{Name: "lease", Order: 20, Config: "propose:lease", Prefixes: []string{"locks/"}},
		entry{Name: "etag", Order: 10, Config: "propose:etag"},
		entry{Name: "lww", Order: 30, Config: "propose:last-writer-wins", Buckets: []string{"scratch"}},
		entry{Name: "no", Order: 5, Config: "deny:frozen", Buckets: []string{"frozen"}},
		entry{Name: "pass", Order: 40, Config: "pass", Buckets: []string{"*"}},
		entry{Name: "late-deny", Order: 50, Config: "deny:", Prefixes: []string{"tmp/"}},
	)
	ctx := context.Background()
	for _, c := range []struct {
		bucket, key string
		want        plugins.Decision
	}{
		{"b", "x", plugins.Decision{Verdict: abi.Propose, Strategy: "etag", Plugin: "etag"}},
		{"b", "locks/x", plugins.Decision{Verdict: abi.Propose, Strategy: "lease", Plugin: "lease"}},
		{"scratch", "locks/x", plugins.Decision{Verdict: abi.Propose, Strategy: "last-writer-wins", Plugin: "lww"}},
		{"frozen", "locks/x", plugins.Decision{Verdict: abi.Deny, Reason: "frozen", Plugin: "no"}},
		{"b", "tmp/x", plugins.Decision{Verdict: abi.Deny, Reason: "denied by plugin late-deny", Plugin: "late-deny"}},
		{"b", "", plugins.Decision{Verdict: abi.Propose, Strategy: "etag", Plugin: "etag"}},
	} {
		got, err := d.Set().Decide(ctx, req(c.bucket, c.key))
		if err != nil || got != c.want {
			t.Errorf("%s/%s: %+v, %v; want %+v", c.bucket, c.key, got, err, c.want)
		}
	}
	if names := d.Set().Names(); !reflect.DeepEqual(names, []string{"no", "etag", "lease", "lww", "pass", "late-deny"}) {
		t.Errorf("order %v", names)
	}
}

// TestRecord checks that a guest sees exactly the Input the host was given.
func TestRecord(t *testing.T) {
	d, _ := load(t, entry{Name: "echo", Config: "echo"})
	in := &abi.Input{
		Action:    "s3:PutObject",
		Principal: abi.Principal{AccessKey: "AK", Name: "alice", Groups: []string{"dev", "ops"}, Root: true},
		Bucket:    abi.Bucket{Name: "b", Owner: "alice", Strategy: "etag", Tags: map[string]string{"t": "1"}},
		Object:    abi.Object{Key: "ké y", Exists: true, ETag: `"e"`, Size: 5, Generation: 2, ContentType: "text/plain", LeaseState: "leased"},
		Request: abi.Request{Method: "PUT", Headers: map[string]string{"if-match": `"e"`, "content-type": "a/b"}, Size: 9,
			RemoteAddr: "127.0.0.1:1", Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)},
	}
	got, err := d.Set().Decide(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(in)
	if got.Reason != string(want) {
		t.Errorf("guest saw\n%s\nwant\n%s", got.Reason, want)
	}
}

func TestLogAndConfig(t *testing.T) {
	d, logs := load(t, entry{Name: "logger", Config: "log"})
	if _, err := d.Set().Decide(context.Background(), req("b", "k1")); err != nil {
		t.Fatal(err)
	}
	for _, level := range []string{"DEBUG", "INFO", "WARN", "ERROR"} {
		if !strings.Contains(logs.String(), "level="+level+` msg="hello k1" plugin=logger`) {
			t.Errorf("no %s line in\n%s", level, logs)
		}
	}
	if n := strings.Count(logs.String(), "msg=chatty"); n != abi.MaxLogLines-4 {
		t.Errorf("%d chatty lines logged, want %d (the per-call cap)", n, abi.MaxLogLines-4)
	}
}

func TestGrants(t *testing.T) {
	d, _ := load(t,
		entry{Name: "sandboxed", Config: "clock", Buckets: []string{"a"}},
		entry{Name: "granted", Config: "clock", Buckets: []string{"b"}, Grants: []string{"clock"}},
	)
	for bucket, want := range map[string]string{"a": "fake", "b": "real"} {
		got, err := d.Set().Decide(context.Background(), req(bucket, "k"))
		if err != nil || got.Reason != want {
			t.Errorf("%s: %+v, %v; want clock %s", bucket, got, err, want)
		}
	}
}

func TestFaults(t *testing.T) {
	// Generous timeouts where a timeout is not the point: a loaded 2-core CI box must not flake.
	es := []entry{{Name: "good", Config: "propose:lease", Buckets: []string{"good"}, PoolSize: 4, Timeout: "1s"}}
	kinds := map[string]string{
		"loop":      plugins.FaultTimeout,
		"panic":     plugins.FaultTrap,
		"oom":       plugins.FaultMemory,
		"bigreason": plugins.FaultOutput,
		"badcode":   plugins.FaultOutput,
	}
	for mode, kind := range kinds {
		e := entry{Name: mode, Config: mode, Buckets: []string{mode}, MemoryPages: 128, PoolSize: 2}
		if kind != plugins.FaultTimeout {
			e.Timeout = "1s"
		}
		es = append(es, e)
	}
	d, logs := load(t, es...)
	s := d.Set()
	ctx := context.Background()

	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for i := range 100 {
		wg.Go(func() {
			got, err := s.Decide(ctx, req("good", fmt.Sprint(i)))
			if err != nil || got.Strategy != "lease" {
				errs <- fmt.Errorf("good call %d: %+v, %v", i, got, err)
			}
		})
	}
	for mode, kind := range kinds {
		for range 3 { // each fault discards its instance; the next call gets a fresh one
			wg.Go(func() {
				_, err := s.Decide(ctx, req(mode, "k"))
				var fe *plugins.FaultError
				if !errors.Is(err, plugins.ErrFault) || !errors.As(err, &fe) || fe.Kind != kind || fe.Plugin != mode {
					errs <- fmt.Errorf("%s: err = %v, want a %s fault", mode, err, kind)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// A fault is one readable log line: the error's first line, the wasm stack as function
	// names, the guest's stderr with its lines joined; nothing escaped.
	for _, want := range []string{
		`msg="plugin fault" plugin=panic kind=trap fail_open=false err="wasm error: unreachable" ` +
			`wasm_stack="runtime.abort < runtime.fatalpanic < runtime.gopanic < main.decide < github.com_weirproject_weir_sdk.decide < ` +
			`github.com_weirproject_weir_sdk.weirDecide < weir_decide" stderr="panic: boom: k | goroutine 1 [running]: | main.decide(`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no log line with\n%s\nin\n%s", want, logs)
		}
	}
	loop := regexp.MustCompile(`msg="plugin fault" plugin=loop kind=timeout fail_open=false ` +
		`err="stopped after [0-9.]+ms of CPU time, over its budget of 10ms"`)
	if !loop.MatchString(logs.String()) {
		t.Errorf("no log line matching\n%s\nin\n%s", loop, logs)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `\n`) || len(line) > 2000 {
			t.Errorf("an escaped or enormous log line: %s", line)
		}
	}
	for _, st := range s.Stats() {
		if st.Live > st.PoolSize || st.ResidentBytes > st.MaxResidentBytes || st.ResidentBytes < 0 {
			t.Errorf("%+v out of bounds", st)
		}
		if _, faulty := kinds[st.Name]; faulty && st.Faults != 3 {
			t.Errorf("%s: %d faults, want 3", st.Name, st.Faults)
		}
	}
}

// TestLoadLogs: loading logs the plugins that serve, and warns of a manifest bucket no request
// can name (it is loaded: the plugin simply never applies there).
func TestLoadLogs(t *testing.T) {
	_, logs := load(t,
		entry{Name: "a", Config: "pass", Buckets: []string{"Media_Uploads", "media", "*"}},
		entry{Name: "b", Config: "pass", Buckets: []string{"192.168.1.1"}},
	)
	for _, want := range []string{
		`level=INFO msg="plugins loaded" dir=`,
		` count=2 plugins="[a b]"`,
		`level=WARN msg="plugin names a bucket that cannot exist, so it never applies there" plugin=a bucket=Media_Uploads why="bucket names use only lower-case letters, digits, '.' and '-'"`,
		`level=WARN msg="plugin names a bucket that cannot exist, so it never applies there" plugin=b bucket=192.168.1.1 why="bucket names are not IP addresses"`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %q in the log:\n%s", want, logs)
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 2 {
		t.Errorf("%d warnings, want 2 (media and * are fine):\n%s", n, logs)
	}
}

func TestFailOpen(t *testing.T) {
	d, logs := load(t,
		entry{Name: "etag", Order: 1, Config: "propose:etag"},
		entry{Name: "broken", Order: 2, Config: "panic", FailOpen: true},
	)
	got, err := d.Set().Decide(context.Background(), req("b", "k"))
	if err != nil || got != (plugins.Decision{Verdict: abi.Propose, Strategy: "etag", Plugin: "etag"}) {
		t.Errorf("%+v, %v", got, err)
	}
	if !strings.Contains(logs.String(), "plugin fault") || !strings.Contains(logs.String(), "fail_open=true") {
		t.Errorf("fault not logged:\n%s", logs)
	}
}

// TestPoolExclusive hammers a small pool: no instance may ever serve two calls at once.
func TestPoolExclusive(t *testing.T) {
	d, _ := load(t, entry{Name: "x", Config: "exclusive", PoolSize: 2, Timeout: "1s"})
	s := d.Set()
	var wg sync.WaitGroup
	var failed sync.Once
	for range 8 {
		wg.Go(func() {
			for range 50 {
				got, err := s.Decide(context.Background(), req("b", "k"))
				if err != nil || got.Verdict != abi.Pass {
					failed.Do(func() { t.Errorf("%+v, %v", got, err) })
				}
			}
		})
	}
	wg.Wait()
	if st := s.Stats()[0]; st.Live != 2 || st.ResidentBytes <= 0 || st.ResidentBytes > st.MaxResidentBytes {
		t.Errorf("stats %+v", st)
	}
}

func TestPassFast(t *testing.T) {
	var nilSet *plugins.Set
	if got, err := nilSet.Decide(context.Background(), req("b", "k")); err != nil || got.Verdict != abi.Pass {
		t.Errorf("nil set: %+v, %v", got, err)
	}
	d, _ := load(t, entry{Name: "only-locks", Config: "deny:x", Prefixes: []string{"locks/"}})
	in := req("b", "data/k")
	if n := testing.AllocsPerRun(100, func() { d.Set().Decide(context.Background(), in) }); n != 0 {
		t.Errorf("a request no plugin matches allocates %v times", n)
	}
}

func TestCancelledCaller(t *testing.T) {
	d, _ := load(t, entry{Name: "slow", Config: "loop", Timeout: "2s"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := d.Set().Decide(ctx, req("b", "k"))
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, plugins.ErrFault) {
		t.Errorf("err = %v, want the caller's deadline, not a fault", err)
	}
}

func TestLoadErrors(t *testing.T) {
	good := genModule{memory: true, funcs: []genFunc{{"weir_abi_version", 0x10000}, {"weir_decide", 0}}}
	cases := []struct {
		name     string
		manifest string
		module   []byte
		want     error
		says     string
	}{
		{"no manifest", "", nil, plugins.ErrManifest, "plugins.json"},
		{"bad json", `{"plugins": [`, nil, plugins.ErrManifest, "unexpected EOF"},
		{"unknown field", `{"plugins": [{"name": "m", "wasm": "m.wasm", "memory": 1}]}`, good.bytes(), plugins.ErrManifest, `unknown field "memory"`},
		{"no name", `{"plugins": [{"wasm": "m.wasm"}]}`, good.bytes(), plugins.ErrManifest, "no name"},
		{"duplicate", `{"plugins": [{"name": "m", "wasm": "m.wasm"}, {"name": "m", "wasm": "m.wasm"}]}`, good.bytes(), plugins.ErrManifest, "duplicate"},
		{"escape", `{"plugins": [{"name": "m", "wasm": "../m.wasm"}]}`, good.bytes(), plugins.ErrManifest, "inside the plugins directory"},
		{"timeout", `{"plugins": [{"name": "m", "wasm": "m.wasm", "timeout": "soon"}]}`, good.bytes(), plugins.ErrManifest, "timeout"},
		{"grant", `{"plugins": [{"name": "m", "wasm": "m.wasm", "grants": ["network"]}]}`, good.bytes(), plugins.ErrManifest, `unknown grant "network"`},
		{"reads", `{"plugins": [{"name": "m", "wasm": "m.wasm", "reads": ["body"]}]}`, good.bytes(), plugins.ErrManifest, `unknown reads "body"`},
		{"no file", `{"plugins": [{"name": "m", "wasm": "other.wasm"}]}`, good.bytes(), plugins.ErrModule, "other.wasm"},
		{"not wasm", `{"plugins": [{"name": "m", "wasm": "m.wasm"}]}`, []byte("hello"), plugins.ErrModule, `plugin "m"`},
		{"missing exports", `{"plugins": [{"name": "m", "wasm": "m.wasm"}]}`,
			genModule{funcs: []genFunc{{"weir_decide", 0}}}.bytes(), plugins.ErrMissingExport, "[weir_abi_version memory]"},
		{"major 2", `{"plugins": [{"name": "m", "wasm": "m.wasm"}]}`,
			genModule{memory: true, funcs: []genFunc{{"weir_abi_version", 0x20000}, {"weir_decide", 0}}}.bytes(), plugins.ErrABIVersion, "built for ABI 2.0"},
		{"newer minor", `{"plugins": [{"name": "m", "wasm": "m.wasm"}]}`,
			genModule{memory: true, funcs: []genFunc{{"weir_abi_version", 0x10002}, {"weir_decide", 0}}}.bytes(), plugins.ErrABIVersion, "built for ABI 1.2"},
		{"unknown host function", `{"plugins": [{"name": "m", "wasm": "m.wasm"}]}`,
			genModule{memory: true, imports: []genImport{{"weir_v1", "lease_take", 1, 1}}, funcs: good.funcs}.bytes(), plugins.ErrABIVersion, "weir_v1.lease_take"},
		{"wrong host signature", `{"plugins": [{"name": "m", "wasm": "m.wasm"}]}`,
			genModule{memory: true, imports: []genImport{{"weir_v1", "input_read", 1, 1}}, funcs: good.funcs}.bytes(), plugins.ErrABIVersion, "weir_v1.input_read[i32] -> [i32]"},
		{"foreign import", `{"plugins": [{"name": "m", "wasm": "m.wasm"}]}`,
			genModule{memory: true, imports: []genImport{{"env", "socket", 0, 1}}, funcs: good.funcs}.bytes(), plugins.ErrModule, "env.socket"},
		{"memory too small", `{"plugins": [{"name": "m", "wasm": "m.wasm", "memory_pages": 2}]}`,
			genModule{memory: true, minPages: 3, funcs: good.funcs}.bytes(), plugins.ErrManifest, "memory_pages 2 is below the module's initial memory of 3 pages"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.manifest != "" {
				pluginstest.Rewrite(t, dir, c.manifest, map[string][]byte{"m.wasm": c.module})
			}
			d, err := plugins.LoadDir(context.Background(), dir, plugins.Options{})
			if err == nil {
				d.Close(context.Background())
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
				t.Errorf("err = %v\nwant %v saying %q", err, c.want, c.says)
			}
		})
	}
	// The generated module itself is fine.
	dir := pluginstest.WriteDir(t, `{"plugins": [{"name": "m", "wasm": "m.wasm"}]}`, map[string][]byte{"m.wasm": good.bytes()})
	d, err := plugins.LoadDir(context.Background(), dir, plugins.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.Close(context.Background())
}

func TestReload(t *testing.T) {
	ctx := context.Background()
	wasm := modes(t)
	dir := pluginstest.WriteDir(t, manifest(t, entry{Name: "p", Config: "propose:etag", Timeout: "1s"}), map[string][]byte{"modes.wasm": wasm})
	d, err := plugins.LoadDir(ctx, dir, plugins.Options{CacheDir: cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(ctx)
	strategy := func() string {
		t.Helper()
		got, err := d.Set().Decide(ctx, req("b", "k"))
		if err != nil {
			t.Fatal(err)
		}
		return string(got.Strategy)
	}
	if changed, err := d.Reload(ctx); changed || err != nil {
		t.Fatalf("unchanged dir: %v, %v", changed, err)
	}

	// Callers keep deciding through every reload, accepted or rejected, without an error. (The
	// 1s timeouts: compiling saturates both cores of a small CI box, which would stall 5ms
	// calls past their deadline; see README.md.)
	stop := make(chan struct{})
	var hammer sync.WaitGroup
	for range 4 {
		hammer.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if got, err := d.Set().Decide(ctx, req("b", "k")); err != nil || got.Verdict != abi.Propose {
					t.Errorf("during reloads: %+v, %v", got, err)
					return
				}
			}
		})
	}
	defer func() { close(stop); hammer.Wait() }()

	// A good change is picked up; the old Set, still held by a caller, forwards to the new one.
	old := d.Set()
	pluginstest.Rewrite(t, dir, manifest(t, entry{Name: "p", Config: "propose:lease", Timeout: "1s"}), nil)
	if changed, err := d.Reload(ctx); !changed || err != nil {
		t.Fatalf("good change: %v, %v", changed, err)
	}
	if s := strategy(); s != "lease" {
		t.Errorf("after reload: %q", s)
	}
	if got, err := old.Decide(ctx, req("b", "k")); err != nil || got.Strategy != "lease" {
		t.Errorf("retired set: %+v, %v", got, err)
	}

	// A bad module is rejected; the previous set keeps serving, and the same bad content is
	// reported again without recompiling.
	pluginstest.Rewrite(t, dir, "", map[string][]byte{"modes.wasm": []byte("\x00asm garbage")})
	for range 2 {
		if changed, err := d.Reload(ctx); changed || !errors.Is(err, plugins.ErrModule) {
			t.Fatalf("bad module: %v, %v", changed, err)
		}
		if s := strategy(); s != "lease" {
			t.Errorf("after a rejected reload: %q", s)
		}
	}
	// So is a module that lacks exports, naming them.
	pluginstest.Rewrite(t, dir, "", map[string][]byte{"modes.wasm": genModule{funcs: []genFunc{{"weir_decide", 0}}}.bytes()})
	if changed, err := d.Reload(ctx); changed || !errors.Is(err, plugins.ErrMissingExport) || !strings.Contains(err.Error(), "weir_abi_version") {
		t.Fatalf("module without exports: %v, %v", changed, err)
	}
	if s := strategy(); s != "lease" {
		t.Errorf("after a rejected reload: %q", s)
	}
	// Fixing it is picked up.
	pluginstest.Rewrite(t, dir, manifest(t, entry{Name: "p", Config: "propose:last-writer-wins", Timeout: "1s"}), map[string][]byte{"modes.wasm": wasm})
	if changed, err := d.Reload(ctx); !changed || err != nil {
		t.Fatalf("fix: %v, %v", changed, err)
	}
	if s := strategy(); s != "last-writer-wins" {
		t.Errorf("after the fix: %q", s)
	}
}

func TestWatchAndCacheDir(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A fresh cache directory gets the compiled module (a small one: compiling a Go guest
	// again would take minutes under -race on a busy machine).
	cache := t.TempDir()
	wat, err := os.ReadFile("../examples/plugins/wat-readonly/plugin.wasm")
	if err != nil {
		t.Fatal(err)
	}
	small, err := plugins.LoadDir(ctx, pluginstest.WriteDir(t, `{"plugins": [{"name": "r", "wasm": "r.wasm"}]}`,
		map[string][]byte{"r.wasm": wat}), plugins.Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	small.Close(ctx)
	if entries, _ := os.ReadDir(cache); len(entries) == 0 {
		t.Error("nothing in the compilation cache directory")
	}

	dir := pluginstest.WriteDir(t, manifest(t, entry{Name: "p", Config: "propose:etag"}), map[string][]byte{"modes.wasm": modes(t)})
	logs := &testlog.Buffer{}
	d, err := plugins.LoadDir(ctx, dir, plugins.Options{CacheDir: cacheDir, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	go d.Watch(ctx, 5*time.Millisecond)
	pluginstest.Rewrite(t, dir, `{"plugins": [`, nil)
	waitFor(t, func() bool {
		return strings.Contains(logs.String(), `msg="plugins reload rejected; the previous plugins keep serving"`)
	})
	pluginstest.Rewrite(t, dir, manifest(t, entry{Name: "q", Config: "propose:lease"}), nil)
	waitFor(t, func() bool { return reflect.DeepEqual(d.Set().Names(), []string{"q"}) })
	if n := strings.Count(logs.String(), "plugins reload rejected"); n != 1 {
		t.Errorf("rejection logged %d times", n)
	}
	waitFor(t, func() bool { return strings.Contains(logs.String(), `msg="plugins reloaded" dir=`+dir+` plugins=[q]`) })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

func TestClose(t *testing.T) {
	dir := pluginstest.WriteDir(t, manifest(t, entry{Name: "p", Config: "pass"}), map[string][]byte{"modes.wasm": modes(t)})
	d, err := plugins.LoadDir(context.Background(), dir, plugins.Options{CacheDir: cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	s := d.Set()
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Decide(context.Background(), req("b", "k")); !errors.Is(err, plugins.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	if _, err := d.Reload(context.Background()); !errors.Is(err, plugins.ErrClosed) {
		t.Errorf("Reload after Close: %v", err)
	}
}

func TestStatsLoadTime(t *testing.T) {
	d, _ := load(t, entry{Name: "p", Config: "pass", MemoryPages: 64, PoolSize: 3})
	st := d.Set().Stats()[0]
	if st.LoadTime <= 0 || st.PoolSize != 3 || st.Live != 1 || st.MaxResidentBytes != 3*64*65536 {
		t.Errorf("%+v", st)
	}
	t.Logf("load of a Go plugin (%d KiB) with a warm compilation cache: %v", len(modes(t))>>10, st.LoadTime)
}
