//go:build linux

package plugins

import (
	"syscall"
	"time"
	"unsafe"
)

// cpuBudget: on Linux a call's timeout is a budget of CPU time of the OS thread that runs the
// call (it is pinned for the call), read from the kernel's per-thread CPU clock, which another
// thread can read while the call runs.
const cpuBudget = true

// threadClock is the CPU clock of one OS thread of this process.
type threadClock int32

// currentThread returns the clock of the calling OS thread; the caller must be locked to it.
func currentThread() threadClock {
	// The clock id of a thread's CPU time as glibc's pthread_getcpuclockid makes it:
	// the inverted thread id shifted left 3, then 4 (per thread) | 2 (scheduler time, the
	// precise user plus system time; the user-only clock advances in whole ticks).
	return threadClock(int32(^uint32(syscall.Gettid())<<3) | 4 | 2)
}

// cpu returns the CPU time the thread has used, or 0 if the thread is gone.
func (c threadClock) cpu() time.Duration {
	var ts syscall.Timespec
	if _, _, errno := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, uintptr(c), uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return 0
	}
	return time.Duration(ts.Nano())
}
