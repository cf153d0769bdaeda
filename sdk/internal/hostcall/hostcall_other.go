//go:build !wasip1

package hostcall

// InputRead reads the request record into buf if it fits and returns its length.
func InputRead(buf []byte) int {
	if len(Fake.Input) <= len(buf) {
		copy(buf, Fake.Input)
	}
	return len(Fake.Input)
}

// ConfigRead reads the plugin's config into buf if it fits and returns its length.
func ConfigRead(buf []byte) int {
	if len(Fake.Config) <= len(buf) {
		copy(buf, Fake.Config)
	}
	return len(Fake.Config)
}

// ReasonWrite sets the deny reason of the current call.
func ReasonWrite(reason string) { Fake.Reason = reason }

// Log writes msg to the host's log.
func Log(level int32, msg string) {
	Fake.Logs = append(Fake.Logs, [...]string{"debug", "info", "warn", "error"}[min(max(level, 0), 3)]+": "+msg)
}
