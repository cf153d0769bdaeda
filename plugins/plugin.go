package plugins

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/weirproject/weir/sdk/abi"
)

const pageSize = 65536

// plugin is one compiled module and its pool of instances.
type plugin struct {
	e        entry
	log      *slog.Logger
	rt       wazero.Runtime
	cm       wazero.CompiledModule
	cfg      wazero.ModuleConfig
	loadTime time.Duration

	// idle holds instances ready for a call; slots holds one token per live instance, so
	// that at most pool_size instances exist and put never blocks.
	idle  chan *instance
	slots chan struct{}

	resident atomic.Int64 // bytes of linear memory of the live instances
	faults   atomic.Uint64
	calls    atomic.Uint64
	callTime atomic.Int64 // nanoseconds, wall clock, of every call into the guest
}

// instance is one instantiated module. It is used by one goroutine at a time: whoever took it
// from the pool.
type instance struct {
	p      *plugin
	mod    api.Module
	decide api.Function
	mem    *cappedMemory
	stack  [1]uint64

	// State of the current call, read and written by the host functions.
	rec    []byte
	reason []byte
	outErr error
	logs   int // log lines written in this call
	stderr headBuffer
}

func newPlugin(e entry, rt wazero.Runtime, cm wazero.CompiledModule, log *slog.Logger) *plugin {
	cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions(abi.ExportInitialize)
	if e.clock {
		cfg = cfg.WithSysWalltime().WithSysNanotime().WithSysNanosleep()
	}
	if e.random {
		cfg = cfg.WithRandSource(rand.Reader)
	}
	return &plugin{
		e: e, log: log, rt: rt, cm: cm, cfg: cfg,
		idle:  make(chan *instance, e.PoolSize),
		slots: make(chan struct{}, e.PoolSize),
	}
}

// initTimeout is the budget of instantiation (_initialize) and of the version check: a Go
// guest's runtime start-up takes a few milliseconds of CPU, more than a call's budget.
func (p *plugin) initTimeout() time.Duration { return max(time.Second, p.e.timeout) }

// newInstance instantiates the module, running _initialize.
func (p *plugin) newInstance(ctx context.Context) (*instance, error) {
	in := &instance{p: p}
	in.mem = &cappedMemory{limit: uint64(p.e.MemoryPages) * pageSize, resident: &p.resident}
	ctx = experimental.WithMemoryAllocator(ctx, experimental.MemoryAllocatorFunc(
		func(c, _ uint64) experimental.LinearMemory {
			in.mem.buf = make([]byte, 0, min(c, in.mem.limit))
			return in.mem
		}))
	cctx, bound := pinAndBound(context.WithValue(ctx, callKey{}, in), p.initTimeout())
	mod, err := p.rt.InstantiateModule(cctx, p.cm, p.cfg.WithStderr(&in.stderr))
	used, stopped := bound.stop(cctx)
	if err == nil && stopped != nil {
		err = errors.New("closed") // the bound fired as instantiation returned
	}
	if err != nil {
		if mod != nil {
			_ = mod.Close(context.Background())
		}
		var why error
		if stopped != nil {
			why = fmt.Errorf("instantiation (_initialize) %w", bound.err(stopped, used))
		}
		return nil, in.fault(err, why)
	}
	in.mod = mod
	in.decide = mod.ExportedFunction(abi.ExportDecide)
	return in, nil
}

// checkVersion calls weir_abi_version.
func (in *instance) checkVersion(ctx context.Context) error {
	cctx, bound := pinAndBound(context.WithValue(ctx, callKey{}, in), in.p.initTimeout())
	err := in.mod.ExportedFunction(abi.ExportABIVersion).CallWithStack(cctx, in.stack[:])
	used, stopped := bound.stop(cctx)
	if stopped != nil {
		return in.fault(err, fmt.Errorf("weir_abi_version %w", bound.err(stopped, used)))
	}
	if err != nil {
		return in.fault(err, nil)
	}
	v := uint32(in.stack[0])
	if v>>16 != abi.Major || v&0xffff > abi.Minor {
		return fmt.Errorf("%w: plugin %q is built for ABI %d.%d (weir_abi_version() = %#x); this host speaks %d.%d",
			ErrABIVersion, in.p.e.Name, v>>16, v&0xffff, v, abi.Major, abi.Minor)
	}
	return nil
}

// fault turns an error of a call into a *FaultError. stopped, when not nil, says why the
// call's bound stopped it, and err (possibly nil) is then only the runtime's report of where.
func (in *instance) fault(err, stopped error) *FaultError {
	fe := &FaultError{Plugin: in.p.e.Name, Kind: FaultTrap, Err: err, Stderr: in.stderr.String()}
	switch {
	case in.mem.refused.Load():
		fe.Kind = FaultMemory
	case stopped != nil:
		fe.Kind = FaultTimeout
	}
	if err != nil {
		fe.Stack = wasmStack(err.Error())
	}
	if stopped != nil {
		fe.Err = stopped
	}
	return fe
}

// get takes an idle instance, or creates one if fewer than pool_size are live, or waits.
func (p *plugin) get(ctx context.Context) (*instance, error) {
	select {
	case in := <-p.idle:
		return in, nil
	default:
	}
	select {
	case in := <-p.idle:
		return in, nil
	case p.slots <- struct{}{}:
		in, err := p.newInstance(ctx)
		if err != nil {
			<-p.slots
			return nil, err
		}
		return in, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("plugins: plugin %q: waiting for an instance: %w", p.e.Name, ctx.Err())
	}
}

// put returns a healthy instance to the pool.
func (p *plugin) put(in *instance) { p.idle <- in }

// discard closes an instance that faulted (or whose call was cancelled): it never serves again.
func (p *plugin) discard(in *instance) {
	_ = in.mod.Close(context.Background())
	<-p.slots
}

// call runs weir_decide on a pooled instance with rec as the request record.
func (p *plugin) call(ctx context.Context, rec []byte) (abi.Result, string, error) {
	in, err := p.get(ctx)
	if err != nil {
		var fe *FaultError
		if errors.As(err, &fe) { // a new instance failed to start
			p.logFault(ctx, fe)
		}
		return 0, "", err
	}
	in.rec, in.reason, in.outErr, in.logs = rec, in.reason[:0], nil, 0
	in.stderr.Reset()
	in.mem.refused.Store(false)
	// The timeout is a CPU budget: wall-clock time also counts the moments the host did not
	// run this thread (other goroutines, other processes), which on a busy machine failed
	// healthy calls. The bound pins the thread, so its CPU clock measures the call alone, and
	// stops the call as soon as the budget is spent.
	start := time.Now()
	cctx, bound := pinAndBound(context.WithValue(ctx, callKey{}, in), p.e.timeout)
	err = in.decide.CallWithStack(cctx, in.stack[:])
	used, stopped := bound.stop(cctx)
	p.calls.Add(1)
	p.callTime.Add(int64(time.Since(start)))
	in.rec = nil
	if err != nil && ctx.Err() != nil {
		// The caller gave up (client gone, request deadline): not the plugin's fault, but the
		// instance was closed mid-call.
		p.discard(in)
		return 0, "", fmt.Errorf("plugins: plugin %q: %w", p.e.Name, ctx.Err())
	}
	var fe *FaultError
	r := abi.Result(uint32(in.stack[0]))
	switch {
	case stopped != nil || (cpuBudget && used > p.e.timeout):
		if stopped == nil {
			stopped = errCPUBudget // it returned before the bound's timer saw the budget spent
		}
		fe = in.fault(err, bound.err(stopped, used))
	case err != nil:
		fe = in.fault(err, nil)
	case in.outErr != nil:
		fe = &FaultError{Plugin: p.e.Name, Kind: FaultOutput, Err: in.outErr}
	default:
		if cerr := r.Check(); cerr != nil {
			fe = &FaultError{Plugin: p.e.Name, Kind: FaultOutput, Err: cerr}
		}
	}
	if fe != nil {
		p.discard(in)
		p.logFault(ctx, fe)
		return 0, "", fe
	}
	var reason string
	if r.Verdict() == abi.Deny {
		reason = string(in.reason)
	}
	p.put(in)
	return r, reason, nil
}

// logFault counts and logs a fault: the error's first line, then the guest's wasm stack and
// its stderr each as one line of their own attribute, so that a fault is one readable line.
func (p *plugin) logFault(ctx context.Context, fe *FaultError) {
	p.faults.Add(1)
	attrs := []slog.Attr{slog.String("plugin", p.e.Name), slog.String("kind", fe.Kind),
		slog.Bool("fail_open", p.e.FailOpen), slog.String("err", firstLine(fe.Err))}
	if len(fe.Stack) > 0 {
		attrs = append(attrs, slog.String("wasm_stack", stackLine(fe.Stack)))
	}
	if fe.Stderr != "" {
		attrs = append(attrs, slog.String("stderr", oneLine(fe.Stderr)))
	}
	p.log.LogAttrs(ctx, slog.LevelError, "plugin fault", attrs...)
}

// headBuffer keeps the first bytes a guest writes to stderr (a Go panic message comes first).
type headBuffer struct{ b []byte }

const stderrKeep = 512

func (h *headBuffer) Write(p []byte) (int, error) {
	if n := stderrKeep - len(h.b); n > 0 {
		h.b = append(h.b, p[:min(n, len(p))]...)
	}
	return len(p), nil
}

func (h *headBuffer) Reset()         { h.b = h.b[:0] }
func (h *headBuffer) String() string { return string(h.b) }
