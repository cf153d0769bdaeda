// Package sdk will hold what plugin authors import: the versioned plugin ABI and the Go guest SDK
// (GOOS=wasip1, //go:wasmexport) (DESIGN §7, issue 5).
package sdk
