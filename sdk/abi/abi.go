package abi

import "fmt"

// Version of the ABI this package describes.
const (
	// Major changes only with an incompatible change; it is also part of [ModuleName].
	Major = 1
	// Minor grows with additive changes. A host accepts guests whose minor is at most its own.
	// 1.1 added the object's tags to the request record (list slot 3, [ListObjectTags]).
	Minor = 1
	// Version is what a guest's weir_abi_version export returns: Major<<16 | Minor.
	//
	// # Examples
	//
	//   - 0x00010000 (65536): ABI 1.0, accepted by a 1.1 host
	//   - 0x00010001: ABI 1.1
	//   - 0x00010002: ABI 1.2, refused by a 1.1 host
	//   - 0x00020000: ABI 2.0, refused by every 1.x host
	Version uint32 = Major<<16 | Minor
)

// ModuleName is the import module that holds the host functions of ABI v1, like
// wasi_snapshot_preview1 carries its version in its name.
const ModuleName = "weir_v1"

// Host functions, imported by a guest from [ModuleName]. All parameters and results are i32.
const (
	// FuncInputRead is input_read(ptr, limit i32) -> len i32.
	//
	// It writes the request record (see the package documentation for its layout) into
	// guest memory at [ptr, ptr+limit) if it fits (len <= limit), and always returns its real
	// length len. A guest whose buffer was too small calls again with a buffer of len bytes.
	// The record does not change during one weir_decide call. The guest owns the buffer.
	// A range outside the guest's memory traps.
	//
	// # Examples
	//
	//   - input_read(1024, 4096) -> 312: 312 bytes written at 1024
	//   - input_read(1024, 0) -> 312: nothing written, the record is 312 bytes long
	FuncInputRead = "input_read"

	// FuncConfigRead is config_read(ptr, limit i32) -> len i32, with the same contract as
	// input_read, for the plugin's config: the raw bytes of the manifest's "config" value
	// (JSON text, or 0 bytes when absent). It never changes during an instance's life, so a
	// guest may read it once (also from _initialize).
	FuncConfigRead = "config_read"

	// FuncReasonWrite is reason_write(ptr, len i32). It sets the reason the host reports
	// with a deny verdict from the current weir_decide call, copying [ptr, ptr+len). The
	// last call wins. len > [MaxReasonLen] is a fault of the plugin (the request fails); a
	// range outside the guest's memory traps.
	FuncReasonWrite = "reason_write"

	// FuncLog is log(level, ptr, len i32). It writes the UTF-8 message at [ptr, ptr+len) to the
	// host's log with the plugin's name, at level ([LogDebug], [LogInfo], [LogWarn] or
	// [LogError]; other values log as error). Messages are cut at [MaxLogLen] bytes;
	// lines after the first [MaxLogLines] of a call are dropped.
	FuncLog = "log"
)

// Exports a guest must (or, for _initialize, may) define.
const (
	// ExportMemory is the guest's linear memory, the one the host functions read and write.
	ExportMemory = "memory"

	// ExportABIVersion is weir_abi_version() -> i32. It returns [Version] the guest was built
	// against. The host calls it once after _initialize and refuses the module unless the
	// major equals its own and the minor is at most its own.
	ExportABIVersion = "weir_abi_version"

	// ExportDecide is weir_decide() -> i32, called once per request. It returns a [Result].
	ExportDecide = "weir_decide"

	// ExportInitialize is _initialize(), the reactor initialiser (Go's
	// -buildmode=c-shared emits it). If exported, the host runs it once per instance before
	// any other call. _start is never called.
	ExportInitialize = "_initialize"
)

// Limits of ABI v1.
const (
	// MaxReasonLen is the longest reason a guest may write with reason_write, in bytes.
	MaxReasonLen = 1024
	// MaxLogLen is the longest log message the host keeps; longer ones are cut.
	MaxLogLen = 1024
	// MaxLogLines is how many log calls per weir_decide call (or per _initialize) the host
	// writes; it drops the rest, so a chatty guest cannot flood the gateway's log.
	MaxLogLines = 16
)

// LogLevel is the level argument of the log host function.
type LogLevel int32

// Log levels.
const (
	LogDebug LogLevel = 0
	LogInfo  LogLevel = 1
	LogWarn  LogLevel = 2
	LogError LogLevel = 3
)

// Verdict is what a plugin says about one request.
type Verdict uint8

const (
	// Pass: the plugin has no opinion; later plugins and the policy decide.
	Pass Verdict = 0
	// Propose: the plugin proposes a concurrency strategy (the policy has the final word).
	Propose Verdict = 1
	// Deny: the plugin refuses the request, with the reason set by reason_write.
	Deny Verdict = 2
)

// String returns "pass", "propose", "deny" or "verdict(N)".
func (v Verdict) String() string {
	switch v {
	case Pass:
		return "pass"
	case Propose:
		return "propose"
	case Deny:
		return "deny"
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// Strategy is a concurrency strategy, by the name operators, policies and plugins write:
// "last-writer-wins", "etag" or "lease". It is weir's one strategy type: the engine, the
// policies and the plugins all use it, and [ParseStrategy] is the one way in from text. In a
// [Result] a strategy travels as a one-byte code ([Strategy.Code]).
type Strategy string

// Strategy names as the gateway, the policy and bucket configuration spell them.
const (
	NameLastWriterWins = "last-writer-wins"
	NameETag           = "etag"
	NameLease          = "lease"
)

const (
	// NoStrategy is the strategy of pass and deny results (code 0).
	NoStrategy Strategy = ""
	// LastWriterWins is "last-writer-wins": unconditional writes (code 1).
	LastWriterWins Strategy = NameLastWriterWins
	// ETag is "etag": writes must carry a matching If-Match / If-None-Match (code 2).
	ETag Strategy = NameETag
	// Lease is "lease": writes need the object's active lease (code 3).
	Lease Strategy = NameLease
)

// strategyCodes lists the strategies by their code in a [Result].
var strategyCodes = [...]Strategy{NoStrategy, LastWriterWins, ETag, Lease}

// String returns the strategy's name ("" for NoStrategy).
func (s Strategy) String() string { return string(s) }

// Known reports whether s is one of last-writer-wins, etag and lease.
func (s Strategy) Known() bool { return s != NoStrategy && s.Code() != 0 }

// Code returns the strategy's code in a [Result]: 1, 2 or 3, and 0 for NoStrategy and for
// names that are not a strategy.
func (s Strategy) Code() uint8 {
	for c, k := range strategyCodes {
		if s == k {
			return uint8(c)
		}
	}
	return 0
}

// ParseStrategy returns the strategy of a name; ok is false for unknown names (and for "").
func ParseStrategy(name string) (s Strategy, ok bool) {
	s = Strategy(name)
	if !s.Known() {
		return NoStrategy, false
	}
	return s, true
}

// Result is the i32 weir_decide returns: bits 0–7 hold the [Verdict], bits 8–15 the
// [Strategy] (non-zero exactly when the verdict is Propose), bits 16–31 are zero.
//
// # Examples
//
//   - 0x0000: pass
//   - 0x0201: propose etag
//   - 0x0301: propose lease
//   - 0x0002: deny (the reason comes from reason_write)
//   - 0x0003, 0x0401, 0x0001, 0x10000: invalid, a fault of the plugin
type Result uint32

// MakeResult packs a verdict and a strategy (an unknown strategy packs as code 0).
func MakeResult(v Verdict, s Strategy) Result { return Result(uint32(v) | uint32(s.Code())<<8) }

// Verdict returns bits 0–7.
func (r Result) Verdict() Verdict { return Verdict(r) }

// Strategy returns the strategy whose code is in bits 8–15 (NoStrategy for a code that is
// none: [Result.Check] reports those).
func (r Result) Strategy() Strategy {
	if c := r.strategyCode(); int(c) < len(strategyCodes) {
		return strategyCodes[c]
	}
	return NoStrategy
}

func (r Result) strategyCode() uint8 { return uint8(r >> 8) }

// Check reports why r is not a valid result, or nil.
func (r Result) Check() error {
	if r>>16 != 0 {
		return fmt.Errorf("abi: result %#x has bits above 15 set", uint32(r))
	}
	v, s := r.Verdict(), r.strategyCode()
	switch v {
	case Pass, Deny:
		if s != 0 {
			return fmt.Errorf("abi: result %#x: a %s verdict carries no strategy", uint32(r), v)
		}
	case Propose:
		if s == 0 || int(s) >= len(strategyCodes) {
			return fmt.Errorf("abi: result %#x: unknown strategy code %d", uint32(r), s)
		}
	default:
		return fmt.Errorf("abi: result %#x: unknown verdict code %d", uint32(r), uint8(v))
	}
	return nil
}
