package plugins

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/weirproject/weir/sdk/abi"
)

// callKey carries the *instance a host function serves; every call into a guest (and its
// instantiation) passes it in the context.
type callKey struct{}

func instanceOf(ctx context.Context) *instance {
	in, _ := ctx.Value(callKey{}).(*instance)
	return in
}

var i32 = api.ValueTypeI32

// hostFuncs lists the weir_v1 functions: name, parameter count (all i32), result count.
var hostFuncs = []struct {
	name    string
	params  int
	results int
	fn      api.GoModuleFunc
}{
	{abi.FuncInputRead, 2, 1, func(ctx context.Context, mod api.Module, stack []uint64) {
		var data []byte
		if in := instanceOf(ctx); in != nil {
			data = in.rec
		}
		stack[0] = uint64(readInto(mod, abi.FuncInputRead, data, uint32(stack[0]), uint32(stack[1])))
	}},
	{abi.FuncConfigRead, 2, 1, func(ctx context.Context, mod api.Module, stack []uint64) {
		var data []byte
		if in := instanceOf(ctx); in != nil {
			data = in.p.e.Config
		}
		stack[0] = uint64(readInto(mod, abi.FuncConfigRead, data, uint32(stack[0]), uint32(stack[1])))
	}},
	{abi.FuncReasonWrite, 2, 0, func(ctx context.Context, mod api.Module, stack []uint64) {
		in := instanceOf(ctx)
		ptr, n := uint32(stack[0]), uint32(stack[1])
		if in == nil {
			return
		}
		if n > abi.MaxReasonLen {
			in.outErr = fmt.Errorf("reason_write of %d bytes, over the %d-byte limit", n, abi.MaxReasonLen)
			return
		}
		b, ok := mod.Memory().Read(ptr, n)
		if !ok {
			panic(fmt.Errorf("weir_v1.reason_write(%d, %d): out of memory range", ptr, n))
		}
		in.reason = append(in.reason[:0], b...)
	}},
	{abi.FuncLog, 3, 0, func(ctx context.Context, mod api.Module, stack []uint64) {
		level, ptr, n := int32(stack[0]), uint32(stack[1]), uint32(stack[2])
		b, ok := mod.Memory().Read(ptr, min(n, abi.MaxLogLen))
		if !ok {
			panic(fmt.Errorf("weir_v1.log(%d, %d, %d): out of memory range", level, ptr, n))
		}
		in := instanceOf(ctx)
		if in == nil || in.logs >= abi.MaxLogLines {
			return
		}
		in.logs++
		l := slog.LevelError
		switch abi.LogLevel(level) {
		case abi.LogDebug:
			l = slog.LevelDebug
		case abi.LogInfo:
			l = slog.LevelInfo
		case abi.LogWarn:
			l = slog.LevelWarn
		}
		in.p.log.Log(ctx, l, string(b), "plugin", in.p.e.Name)
	}},
}

// readInto implements the (ptr, limit) -> len contract: write data at ptr if it fits, always
// return its length.
func readInto(mod api.Module, fn string, data []byte, ptr, limit uint32) uint32 {
	if len(data) > 0 && uint64(len(data)) <= uint64(limit) {
		if !mod.Memory().Write(ptr, data) {
			panic(fmt.Errorf("weir_v1.%s(%d, %d): out of memory range", fn, ptr, limit))
		}
	}
	return uint32(len(data))
}

// instantiateHost adds the weir_v1 module to r.
func instantiateHost(ctx context.Context, r wazero.Runtime) error {
	b := r.NewHostModuleBuilder(abi.ModuleName)
	for _, f := range hostFuncs {
		params := make([]api.ValueType, f.params)
		results := make([]api.ValueType, f.results)
		for i := range params {
			params[i] = i32
		}
		for i := range results {
			results[i] = i32
		}
		b.NewFunctionBuilder().WithGoModuleFunction(f.fn, params, results).Export(f.name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// checkModule validates a compiled module against ABI v1: the exports it must have and the
// imports it may use. memPages is the plugin's memory cap.
func checkModule(name string, cm wazero.CompiledModule, memPages uint32) error {
	var missing []string
	fns := cm.ExportedFunctions()
	for _, want := range []string{abi.ExportABIVersion, abi.ExportDecide} {
		d, ok := fns[want]
		switch {
		case !ok:
			missing = append(missing, want)
		case len(d.ParamTypes()) != 0 || len(d.ResultTypes()) != 1 || d.ResultTypes()[0] != i32:
			missing = append(missing, want+" (wrong type: want () -> i32)")
		}
	}
	if d, ok := fns[abi.ExportInitialize]; ok && (len(d.ParamTypes()) != 0 || len(d.ResultTypes()) != 0) {
		missing = append(missing, abi.ExportInitialize+" (wrong type: want () -> ())")
	}
	mems := cm.ExportedMemories()
	mem, ok := mems[abi.ExportMemory]
	if !ok {
		missing = append(missing, abi.ExportMemory)
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: plugin %q: %v", ErrMissingExport, name, missing)
	}
	if mem.Min() > memPages {
		return fmt.Errorf("%w: plugin %q: memory_pages %d is below the module's initial memory of %d pages",
			ErrManifest, name, memPages, mem.Min())
	}
	for _, d := range cm.ImportedFunctions() {
		mod, fn, _ := d.Import()
		switch mod {
		case "wasi_snapshot_preview1":
			continue // wazero checks names and types; the sandbox makes them harmless
		case abi.ModuleName:
		default:
			return fmt.Errorf("%w: plugin %q imports %s.%s: the host provides only %s and wasi_snapshot_preview1",
				ErrModule, name, mod, fn, abi.ModuleName)
		}
		known := false
		for _, h := range hostFuncs {
			if h.name == fn {
				known = len(d.ParamTypes()) == h.params && len(d.ResultTypes()) == h.results
				for _, t := range append(d.ParamTypes(), d.ResultTypes()...) {
					known = known && t == i32
				}
			}
		}
		if !known {
			return fmt.Errorf("%w: plugin %q imports %s.%s%v -> %v, which ABI %d.%d does not define",
				ErrABIVersion, name, mod, fn, typeNames(d.ParamTypes()), typeNames(d.ResultTypes()), abi.Major, abi.Minor)
		}
	}
	for _, m := range cm.ImportedMemories() {
		mod, n, _ := m.Import()
		return fmt.Errorf("%w: plugin %q imports memory %s.%s: a plugin must define and export its own", ErrModule, name, mod, n)
	}
	return nil
}

func typeNames(ts []api.ValueType) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = api.ValueTypeName(t)
	}
	return out
}
