// Package hostcall is the only place the Go guest SDK touches the host: the raw weir_v1
// imports when built for wasip1, and an in-process fake otherwise so the SDK, plugins and
// their tests build and run natively (sdktest drives the fake). It owns no policy: callers
// decide what to read and write.
package hostcall

// Fake is the host the native build talks to (the wasip1 build ignores it). sdktest sets Input and Config before a call and
// reads Reason and Logs after it. It is not safe for concurrent use; sdktest serialises.
var Fake struct {
	Input  []byte
	Config []byte
	Reason string
	Logs   []string
}

// Decide is set by package sdk to its weir_decide implementation, so that sdktest can run
// exactly what the wasm export runs.
var Decide func() uint32

var (
	config     []byte
	configDone bool
)

// Config returns the plugin's config, read from the host on first use.
func Config() []byte {
	if !configDone {
		if n := ConfigRead(nil); n > 0 {
			config = make([]byte, n)
			config = config[:ConfigRead(config)]
		}
		configDone = true
	}
	return config
}

// ResetConfig forgets the cached config, for sdktest, which changes it between runs.
func ResetConfig() { config, configDone = nil, false }
