package plugins

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync/atomic"
	"time"
)

// Why a call was stopped: the cause of its context's cancellation.
var (
	errCPUBudget = errors.New("CPU budget spent")
	errWallBound = errors.New("wall-clock bound passed")
)

// callBound stops one call into a guest while it runs: once the OS thread running it has used
// its CPU budget, or (for a guest that sleeps, or off Linux) once its wall-clock bound has
// passed. It cancels the call's context; the runtime, built WithCloseOnContextDone, then closes
// the module at the guest's next function entry or loop iteration.
//
// It is a timer, not a goroutine per call: the thread cannot use more CPU time than wall-clock
// time passes, so the timer first fires when the budget could first be spent, reads the
// thread's CPU clock, and re-arms for the part of the budget still unspent. A healthy call
// returns before the timer fires and costs a timer start and stop.
type callBound struct {
	cancel context.CancelCauseFunc
	timer  *time.Timer
	thread threadClock
	cpu0   time.Duration
	start  time.Time
	budget time.Duration
	wall   time.Duration
	done   atomic.Bool
}

// pinAndBound locks the calling goroutine to its OS thread, so that the thread's CPU clock
// measures the call alone, and returns the context for the call. Call stop when the call
// returns.
func pinAndBound(ctx context.Context, budget time.Duration) (context.Context, *callBound) {
	runtime.LockOSThread()
	cctx, cancel := context.WithCancelCause(ctx)
	b := &callBound{cancel: cancel, thread: currentThread(), start: time.Now(), budget: budget, wall: wallBound(budget)}
	b.cpu0 = b.thread.cpu()
	// Armed by Reset once b.timer is set, so that check never sees it unset.
	b.timer = time.AfterFunc(math.MaxInt64, b.check)
	b.timer.Reset(min(budget, b.wall))
	return cctx, b
}

func (b *callBound) check() {
	if b.done.Load() {
		return
	}
	used, elapsed := b.thread.cpu()-b.cpu0, time.Since(b.start)
	switch {
	case cpuBudget && used >= b.budget:
		b.cancel(errCPUBudget)
	case elapsed >= b.wall:
		b.cancel(errWallBound)
	default:
		next := b.wall - elapsed
		if cpuBudget {
			// Re-arm for what is left of the budget, but not sooner than a tenth of it: a
			// thread that gets little CPU on a busy machine is not polled in a tight loop.
			next = min(next, max(b.budget-used, b.budget/10))
		}
		if !b.done.Load() {
			b.timer.Reset(next)
		}
	}
}

// stop ends the bound, unpins the goroutine and returns the CPU time the call used, and why
// the call was stopped (errCPUBudget, errWallBound, or nil).
func (b *callBound) stop(cctx context.Context) (used time.Duration, cause error) {
	b.done.Store(true)
	b.timer.Stop()
	used = b.thread.cpu() - b.cpu0
	runtime.UnlockOSThread()
	cause = context.Cause(cctx)
	b.cancel(nil)
	if cause != errCPUBudget && cause != errWallBound {
		cause = nil
	}
	return used, cause
}

// err describes a call stopped for cause.
func (b *callBound) err(cause error, used time.Duration) error {
	if cause == errCPUBudget {
		return fmt.Errorf("stopped after %v of CPU time, over its budget of %v", used.Round(time.Microsecond), b.budget)
	}
	return fmt.Errorf("stopped after %v of wall-clock time, its bound", b.wall)
}

// wallBound is how long a call may take in wall-clock time. Off Linux that is the timeout
// itself. On Linux the timeout is a CPU budget, which the bound stops a busy guest on; the
// wall-clock bound only stops one that does not use CPU and does not return (it sleeps, with
// the "clock" grant), so it is set far above what a healthy call takes on a busy machine,
// whose thread may wait for a core most of the time.
func wallBound(budget time.Duration) time.Duration {
	if !cpuBudget {
		return budget
	}
	return max(100*budget, 5*time.Second)
}
