package plugins_test

import (
	"context"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/weirproject/weir/plugins"
	"github.com/weirproject/weir/plugins/pluginstest"
	"github.com/weirproject/weir/sdk/abi"
)

// benchPlugins are the modules the benchmarks call: a Go plugin (the by-key example, Go
// runtime and SDK included) and the hand-written WAT one (the bare cost of the ABI).
func benchPlugins(b *testing.B) map[string][]byte {
	wat, err := os.ReadFile("../examples/plugins/wat-readonly/plugin.wasm")
	if err != nil {
		b.Fatal(err)
	}
	return map[string][]byte{"go": pluginstest.Build(b, "../examples/plugins/by-key"), "wat": wat}
}

func benchInput() *abi.Input {
	return &abi.Input{
		Action:    "s3:PutObject",
		Principal: abi.Principal{AccessKey: "AKIAEXAMPLE", Name: "alice", Groups: []string{"dev"}},
		Bucket:    abi.Bucket{Name: "photos", Owner: "alice", Strategy: "etag"},
		Object:    abi.Object{Key: "locks/2026/11/24/build.json", Exists: true, ETag: `"0123456789abcdef"`, Size: 1234, Generation: 3},
		Request: abi.Request{Method: "PUT", Size: 1234, RemoteAddr: "10.0.0.7:51234", Time: time.Now(),
			Headers: map[string]string{"content-type": "application/json", "if-match": `"0123456789abcdef"`, "content-length": "1234"}},
	}
}

func loadBench(b *testing.B, name string, wasm []byte, pool int) *plugins.Dir {
	dir := pluginstest.WriteDir(b, `{"plugins":[{"name":"p","wasm":"p.wasm","timeout":"1s","pool_size":`+itoa(pool)+`}]}`,
		map[string][]byte{"p.wasm": wasm})
	d, err := plugins.LoadDir(context.Background(), dir, plugins.Options{CacheDir: cacheDir})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close(context.Background()) })
	return d
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// reportQuantiles adds p50 and p99 latency metrics from per-call samples.
func reportQuantiles(b *testing.B, samples []time.Duration) {
	if len(samples) == 0 {
		return
	}
	slices.Sort(samples)
	b.ReportMetric(float64(samples[len(samples)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(samples[len(samples)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(samples[len(samples)-1].Nanoseconds()), "max-ns")
	// Calls over the default deadline: host stalls (GC, scheduling, a noisy VM) that would
	// have been timeout faults without the benchmark's 1s timeout.
	over, _ := slices.BinarySearch(samples, plugins.DefaultTimeout)
	b.ReportMetric(float64(len(samples)-over), "over-deadline")
}

// BenchmarkDecide is one Set.Decide with one matching plugin whose instance is pooled and
// warm: encoding the record, the wasm call, the guest reading key and deciding.
func BenchmarkDecide(b *testing.B) {
	for name, wasm := range benchPlugins(b) {
		b.Run(name, func(b *testing.B) {
			s := loadBench(b, name, wasm, 8).Set()
			in, ctx := benchInput(), context.Background()
			if _, err := s.Decide(ctx, in); err != nil {
				b.Fatal(err)
			}
			samples := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				t := time.Now()
				if _, err := s.Decide(ctx, in); err != nil {
					b.Fatal(err)
				}
				samples = append(samples, time.Since(t))
			}
			b.StopTimer()
			reportQuantiles(b, samples)
		})
	}
}

// BenchmarkDecideParallel is BenchmarkDecide from GOMAXPROCS goroutines at once (run with
// -cpu 1,2,…): each call takes its own instance from the pool, so ns/op should fall with cores.
func BenchmarkDecideParallel(b *testing.B) {
	for name, wasm := range benchPlugins(b) {
		b.Run(name, func(b *testing.B) {
			s := loadBench(b, name, wasm, 16).Set()
			ctx := context.Background()
			var mu sync.Mutex
			var all []time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				in := benchInput()
				var samples []time.Duration
				for pb.Next() {
					t := time.Now()
					if _, err := s.Decide(ctx, in); err != nil {
						b.Error(err)
						return
					}
					samples = append(samples, time.Since(t))
				}
				mu.Lock()
				all = append(all, samples...)
				mu.Unlock()
			})
			b.StopTimer()
			reportQuantiles(b, all)
		})
	}
}

// BenchmarkDecideNoMatch is the cost plugins add to a request no plugin applies to.
func BenchmarkDecideNoMatch(b *testing.B) {
	dir := pluginstest.WriteDir(b, `{"plugins":[{"name":"p","wasm":"p.wasm","buckets":["other"]}]}`,
		map[string][]byte{"p.wasm": benchPlugins(b)["wat"]})
	d, err := plugins.LoadDir(context.Background(), dir, plugins.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close(context.Background())
	s, in, ctx := d.Set(), benchInput(), context.Background()
	b.ReportAllocs()
	for range b.N {
		s.Decide(ctx, in)
	}
}

// BenchmarkLoad is LoadDir of one Go plugin: compiling it (cold: a fresh in-memory cache
// each time; warm: from the on-disk cache) and creating its first instance.
func BenchmarkLoad(b *testing.B) {
	wasm := benchPlugins(b)["go"]
	dir := pluginstest.WriteDir(b, `{"plugins":[{"name":"p","wasm":"p.wasm"}]}`, map[string][]byte{"p.wasm": wasm})
	for _, c := range []struct {
		name  string
		cache string
	}{{"cold", ""}, {"warm-disk-cache", b.TempDir()}} {
		b.Run(c.name, func(b *testing.B) {
			if c.cache != "" { // fill it
				d, err := plugins.LoadDir(context.Background(), dir, plugins.Options{CacheDir: c.cache})
				if err != nil {
					b.Fatal(err)
				}
				d.Close(context.Background())
			}
			b.ResetTimer()
			for range b.N {
				d, err := plugins.LoadDir(context.Background(), dir, plugins.Options{CacheDir: c.cache})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				d.Close(context.Background())
				b.StartTimer()
			}
			b.ReportMetric(float64(len(wasm)>>10), "module-KiB")
		})
	}
}
