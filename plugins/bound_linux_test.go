package plugins_test

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/weirproject/weir/plugins"
	"github.com/weirproject/weir/plugins/pluginstest"
)

// threadCPU is the CPU time (user and system) of the calling OS thread.
func threadCPU(t testing.TB) time.Duration {
	const clockThreadCPUTime = 3 // CLOCK_THREAD_CPUTIME_ID
	var ts syscall.Timespec
	if _, _, errno := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		t.Fatal(errno)
	}
	return time.Duration(ts.Nano())
}

// TestLoopStoppedWithinItsCPUBudget: a guest that never returns is stopped while it runs, once
// it has used its CPU budget, not some multiple of it later. The test pins its goroutine, so
// the call runs on the test's own thread, and reads that thread's CPU clock around the call:
// CPU time, not wall-clock time, so a busy machine does not change the result.
func TestLoopStoppedWithinItsCPUBudget(t *testing.T) {
	// The measure includes creating the instance the call runs on (the first exists already;
	// a Go guest's start-up takes some 20 ms of CPU): a budget well above that keeps it noise.
	const budget = 200 * time.Millisecond
	d, logs := load(t, entry{Name: "loop", Config: "loop", Timeout: budget.String(), PoolSize: 3})
	var wg sync.WaitGroup
	for i := range 3 { // more loops than cores: each is measured on its own thread
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu0 := threadCPU(t)
			start := time.Now()
			_, err := d.Set().Decide(context.Background(), req("b", "k"))
			used, wall := threadCPU(t)-cpu0, time.Since(start)
			var fe *plugins.FaultError
			if !errors.As(err, &fe) || fe.Kind != plugins.FaultTimeout {
				t.Errorf("loop %d: err = %v, want a timeout fault", i, err)
			} else if !strings.Contains(err.Error(), "of CPU time, over its budget of 200ms") {
				t.Errorf("loop %d: the fault does not say the CPU budget stopped it: %v", i, err)
			}
			if used > 2*budget {
				t.Errorf("loop %d: used %v of CPU before it was stopped (%v wall-clock), want under 2× its %v budget", i, used, wall, budget)
			}
			t.Logf("loop %d: stopped after %v of CPU, %v wall-clock", i, used, wall)
		})
	}
	wg.Wait()
	if n := strings.Count(logs.String(), `msg="plugin fault" plugin=loop kind=timeout`); n != 3 {
		t.Errorf("%d timeout faults logged, want 3:\n%s", n, logs)
	}
}

// slowWriter is a log destination that stalls: the thread running the call sleeps in it, as
// a thread does that a busy machine does not schedule.
type slowWriter struct{ stall time.Duration }

func (w slowWriter) Write(p []byte) (int, error) { time.Sleep(w.stall); return len(p), nil }

// TestStalledThreadIsNotATimeout: time the thread running a call spends not running (here
// asleep in a slow log writer; on a busy machine, waiting for a core) does not count against
// the plugin's budget. A wall-clock deadline turned such healthy calls into timeout faults.
func TestStalledThreadIsNotATimeout(t *testing.T) {
	dir := pluginstest.WriteDir(t, manifest(t, entry{Name: "logger", Config: "log", Timeout: "10ms"}),
		map[string][]byte{"modes.wasm": modes(t)})
	d, err := plugins.LoadDir(context.Background(), dir, plugins.Options{CacheDir: cacheDir,
		Logger: slog.New(slog.NewTextHandler(slowWriter{20 * time.Millisecond}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	start := time.Now()
	// The guest logs 16 lines (the per-call cap): over 300 ms of wall-clock time stalled.
	if _, err := d.Set().Decide(context.Background(), req("b", "k")); err != nil {
		t.Fatalf("a healthy call whose thread stalled for %v failed: %v", time.Since(start), err)
	}
}
