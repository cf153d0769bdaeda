package plugins_test

// A tiny WebAssembly binary writer for modules the tests need with exact exports and
// imports (wrong ABI version, missing exports, unknown imports). Every function takes no
// parameters and returns an i32 constant; imports are (i32…) -> i32 functions.

type genFunc struct {
	export string
	value  int32
}

type genImport struct {
	module, name   string
	params, result int
}

type genModule struct {
	imports  []genImport
	funcs    []genFunc
	memory   bool // define and export "memory" (1 page)
	minPages uint32
}

func uleb(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

func sleb(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func name(b []byte, s string) []byte { return append(uleb(b, uint64(len(s))), s...) }

func section(b []byte, id byte, body []byte) []byte {
	return append(uleb(append(b, id), uint64(len(body))), body...)
}

func (m genModule) bytes() []byte {
	out := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	// Types: 0 is () -> i32; then one per import.
	types := uleb(nil, uint64(1+len(m.imports)))
	types = append(types, 0x60, 0, 1, 0x7f)
	for _, im := range m.imports {
		types = uleb(append(types, 0x60), uint64(im.params))
		for range im.params {
			types = append(types, 0x7f)
		}
		types = uleb(types, uint64(im.result))
		for range im.result {
			types = append(types, 0x7f)
		}
	}
	out = section(out, 1, types)
	if len(m.imports) > 0 {
		imps := uleb(nil, uint64(len(m.imports)))
		for i, im := range m.imports {
			imps = name(name(imps, im.module), im.name)
			imps = uleb(append(imps, 0), uint64(1+i))
		}
		out = section(out, 2, imps)
	}
	fns := uleb(nil, uint64(len(m.funcs)))
	for range m.funcs {
		fns = append(fns, 0)
	}
	out = section(out, 3, fns)
	if m.memory {
		out = section(out, 5, uleb([]byte{1, 0}, uint64(max(m.minPages, 1))))
	}
	exps := []byte{}
	n := 0
	for i, f := range m.funcs {
		if f.export != "" {
			exps = uleb(append(name(exps, f.export), 0), uint64(len(m.imports)+i))
			n++
		}
	}
	if m.memory {
		exps = append(name(exps, "memory"), 2, 0)
		n++
	}
	out = section(out, 7, append(uleb(nil, uint64(n)), exps...))
	code := uleb(nil, uint64(len(m.funcs)))
	for _, f := range m.funcs {
		body := sleb([]byte{0, 0x41}, int64(f.value)) // no locals; i32.const v
		body = append(body, 0x0b)
		code = append(uleb(code, uint64(len(body))), body...)
	}
	return section(out, 10, code)
}
