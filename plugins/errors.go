package plugins

import (
	"errors"
	"fmt"
)

// Errors of loading, wrapped with the plugin and the detail; test them with errors.Is.
var (
	// ErrManifest: plugins.json is missing, not valid JSON, or has an invalid entry.
	ErrManifest = errors.New("plugins: bad manifest")
	// ErrModule: a .wasm file cannot be read or compiled, or imports what the host lacks.
	ErrModule = errors.New("plugins: bad module")
	// ErrMissingExport: a module lacks an export the ABI requires, or exports it with the
	// wrong type. The message names every missing export.
	ErrMissingExport = errors.New("plugins: missing export")
	// ErrABIVersion: a module speaks an ABI version this host does not.
	ErrABIVersion = errors.New("plugins: unsupported ABI version")
)

// ErrFault is wrapped by every [*FaultError].
var ErrFault = errors.New("plugins: plugin fault")

// ErrClosed is returned by a [Set] or [Dir] after Close.
var ErrClosed = errors.New("plugins: closed")

// Kinds of [FaultError].
const (
	FaultTrap    = "trap"    // unreachable, out-of-bounds access, a Go panic or exit, …
	FaultTimeout = "timeout" // the call ran past the plugin's timeout
	FaultMemory  = "memory"  // the guest tried to grow its memory past memory_pages
	FaultOutput  = "output"  // invalid result code, reason over 1 KiB, bad record/pointer use
)

// FaultError reports a plugin that misbehaved during a call (or while a new instance was
// being set up for one). The instance involved is discarded; the plugin keeps serving with
// fresh instances. errors.Is(err, ErrFault) holds.
type FaultError struct {
	Plugin string // the plugin's name in the manifest
	Kind   string // FaultTrap, FaultTimeout, FaultMemory or FaultOutput
	Err    error  // what wazero, the CPU budget or the output check reported
	// Stack is the guest's wasm call stack where it trapped, innermost function first, when
	// the runtime reported one (a call stopped by its budget has none).
	Stack []string
	// Stderr is what the guest wrote to stderr during the call (its first 512 bytes): a Go
	// guest's panic message and goroutine trace.
	Stderr string
}

// Error is one line: the plugin, the kind, the first line of Err and of Stderr. The wasm
// stack and the rest of Stderr are in their fields.
func (e *FaultError) Error() string {
	msg := fmt.Sprintf("plugins: plugin %q fault (%s): %s", e.Plugin, e.Kind, firstLine(e.Err))
	if e.Stderr != "" {
		msg += " (stderr: " + firstLine(errors.New(e.Stderr)) + ")"
	}
	return msg
}

// Is reports whether target is ErrFault.
func (e *FaultError) Is(target error) bool { return target == ErrFault }

// Unwrap returns Err.
func (e *FaultError) Unwrap() error { return e.Err }
