//go:build unix

package plugins

import "syscall"

// reserve maps n bytes of zeroed memory outside the Go heap; the OS backs pages on first touch.
func reserve(n int) []byte {
	if n == 0 {
		return nil
	}
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return make([]byte, 0, n) // the Go heap will do
	}
	return b
}

// release returns what reserve mapped.
func release(b []byte) {
	if len(b) > 0 {
		_ = syscall.Munmap(b) // fails harmlessly for the Go-heap fallback
	}
}
