//go:build !linux

package plugins

import "time"

// cpuBudget: elsewhere a call's timeout is wall-clock time.
const cpuBudget = false

func threadCPU() time.Duration { return 0 }
