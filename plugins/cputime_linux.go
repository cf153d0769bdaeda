//go:build linux

package plugins

import (
	"syscall"
	"time"
	"unsafe"
)

// cpuBudget: on Linux a call's timeout is a budget of the calling thread's user CPU time, read
// with getrusage(RUSAGE_THREAD) around the call. System time is left out: the kernel zeroing
// pages the guest touches for the first time is the host's cost, not the guest's.
const cpuBudget = true

const rusageThread = 1 // RUSAGE_THREAD

// threadCPU returns the user CPU time the calling OS thread has used.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	_, _, _ = syscall.RawSyscall(syscall.SYS_GETRUSAGE, rusageThread, uintptr(unsafe.Pointer(&ru)), 0)
	return time.Duration(ru.Utime.Nano())
}
