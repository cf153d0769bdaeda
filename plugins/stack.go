package plugins

import (
	"fmt"
	"strings"
)

// wasmStack extracts the function names of the "wasm stack trace:" wazero appends to a trap's
// message: frame lines are a tab, the function's name (with a leading '.' when the module has
// no name) and its signature; lines with a second tab are source positions, which are skipped.
func wasmStack(msg string) []string {
	_, trace, ok := strings.Cut(msg, "\nwasm stack trace:\n")
	if !ok {
		return nil
	}
	var frames []string
	for _, line := range strings.Split(trace, "\n") {
		if !strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "\t\t") {
			continue
		}
		fn := strings.TrimPrefix(strings.TrimPrefix(line, "\t"), ".")
		if i := strings.IndexByte(fn, '('); i > 0 {
			fn = fn[:i]
		}
		frames = append(frames, fn)
	}
	return frames
}

// maxLoggedFrames is how many frames of a wasm stack a fault's log line shows.
const maxLoggedFrames = 12

// stackLine writes frames innermost first, joined with " < " (each called by the next).
func stackLine(frames []string) string {
	if len(frames) > maxLoggedFrames {
		return strings.Join(frames[:maxLoggedFrames], " < ") + fmt.Sprintf(" < … (%d more)", len(frames)-maxLoggedFrames)
	}
	return strings.Join(frames, " < ")
}

// firstLine is the first line of err's message ("" for nil).
func firstLine(err error) string {
	if err == nil {
		return ""
	}
	line, _, _ := strings.Cut(err.Error(), "\n")
	return line
}

// oneLine joins the non-blank lines of s with " | ", tabs dropped: a guest's stderr (a Go
// panic's message and goroutine trace) on one log line without escapes.
func oneLine(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(strings.ReplaceAll(l, "\t", " ")); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, " | ")
}
