//go:build wasip1

package hostcall

import "unsafe"

//go:wasmimport weir_v1 input_read
func inputRead(ptr unsafe.Pointer, limit uint32) uint32

//go:wasmimport weir_v1 config_read
func configRead(ptr unsafe.Pointer, limit uint32) uint32

//go:wasmimport weir_v1 reason_write
func reasonWrite(ptr unsafe.Pointer, n uint32)

//go:wasmimport weir_v1 log
func logMsg(level int32, ptr unsafe.Pointer, n uint32)

// InputRead reads the request record into buf if it fits and returns its length.
func InputRead(buf []byte) int {
	return int(inputRead(unsafe.Pointer(unsafe.SliceData(buf)), uint32(len(buf))))
}

// ConfigRead reads the plugin's config into buf if it fits and returns its length.
func ConfigRead(buf []byte) int {
	return int(configRead(unsafe.Pointer(unsafe.SliceData(buf)), uint32(len(buf))))
}

// ReasonWrite sets the deny reason of the current call.
func ReasonWrite(reason string) {
	reasonWrite(unsafe.Pointer(unsafe.StringData(reason)), uint32(len(reason)))
}

// Log writes msg to the host's log.
func Log(level int32, msg string) {
	logMsg(level, unsafe.Pointer(unsafe.StringData(msg)), uint32(len(msg)))
}
