//go:build !linux

package plugins

import "time"

// cpuBudget: elsewhere a call's timeout is wall-clock time.
const cpuBudget = false

type threadClock struct{}

func currentThread() threadClock       { return threadClock{} }
func (threadClock) cpu() time.Duration { return 0 }
