//go:build linux

package plugins

import (
	"syscall"
	"time"
	"unsafe"
)

// cpuBudget: on Linux a call's timeout is a budget of the calling thread's CPU time, read
// from CLOCK_THREAD_CPUTIME_ID around the call.
const cpuBudget = true

const clockThreadCPUTime = 3 // CLOCK_THREAD_CPUTIME_ID

// threadCPU returns the CPU time the calling OS thread has used.
func threadCPU() time.Duration {
	var ts syscall.Timespec
	_, _, _ = syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}
