package plugins

import (
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"
)

// cappedMemory backs one instance's linear memory. It refuses to grow past limit bytes and
// remembers that it did, so that the trap that follows (a Go guest exits with "out of memory")
// is reported as a memory fault, and it keeps the plugin's resident byte count exact without
// reading the memory of an instance another goroutine is running.
type cappedMemory struct {
	buf      []byte
	limit    uint64
	refused  atomic.Bool
	resident *atomic.Int64
}

var _ experimental.LinearMemory = (*cappedMemory)(nil)

// Reallocate implements experimental.LinearMemory.
func (m *cappedMemory) Reallocate(size uint64) []byte {
	if size > m.limit {
		m.refused.Store(true)
		return nil
	}
	if m.buf == nil {
		// Reserve the whole cap once, outside the Go heap where the platform allows: growing
		// is then a reslice, never a copy of the guest's memory, and pages cost nothing until
		// the guest touches them.
		m.buf = reserve(int(m.limit))[:0]
	}
	old := len(m.buf)
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size] // never shrinks, so the new tail was never written: still zero
	} else {
		m.buf = append(m.buf, make([]byte, int(size)-old)...)
	}
	m.resident.Add(int64(len(m.buf) - old))
	return m.buf
}

func (m *cappedMemory) Free() {
	m.resident.Add(-int64(len(m.buf)))
	if m.buf != nil {
		release(m.buf[:cap(m.buf)])
	}
	m.buf = nil
}
