package plugins

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Options configure [LoadDir]. The zero value is usable.
type Options struct {
	// CacheDir, if set, keeps compiled modules on disk across restarts
	// (wazero.NewCompilationCacheWithDir); otherwise they are cached in memory only, which
	// still makes a reload of unchanged modules cheap.
	CacheDir string
	// Logger receives faults, plugin log lines and reload outcomes; nil discards them.
	Logger *slog.Logger
}

// Dir is a plugins directory: DIR/plugins.json and the modules it names. It serves one [Set]
// at a time and swaps in a new one when [Dir.Reload] finds a valid change. Its methods are safe
// for concurrent use.
type Dir struct {
	dir   string
	log   *slog.Logger
	cache wazero.CompilationCache
	cur   atomic.Pointer[Set]

	mu       sync.Mutex // serialises Reload and Close
	closed   bool
	stamp    []fileStamp // of the last files looked at
	rejected error       // why the files stamped are not serving, or nil
	sum      [32]byte    // content hash of the serving Set's files
	badSum   [32]byte    // content hash of the last rejected files
	badErr   error       // and why they were rejected
	hasBad   bool
}

// fileStamp is a cheap change detector: size and modification time (or the stat error).
type fileStamp struct {
	name  string
	size  int64
	mtime time.Time
	err   string
}

// LoadDir reads dir/plugins.json, compiles every module it names, validates each against ABI
// v1 (exports, imports, weir_abi_version, memory) by creating its first instance, and returns
// the Dir serving the resulting Set. Any bad entry or module fails the whole load with an
// error wrapping ErrManifest, ErrModule, ErrMissingExport, ErrABIVersion or ErrFault.
func LoadDir(ctx context.Context, dir string, opts Options) (*Dir, error) {
	d := &Dir{dir: dir, log: opts.Logger}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if opts.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("plugins: compilation cache: %w", err)
		}
		d.cache = c
	} else {
		d.cache = wazero.NewCompilationCache()
	}
	files, sum, err := d.read()
	if err == nil {
		var s *Set
		if s, err = d.build(ctx, files); err == nil {
			d.cur.Store(s)
			d.sum = sum
			d.stamp = d.stamps(files.names())
			d.log.Info("plugins loaded", "dir", dir, "count", len(s.plugins), "plugins", s.Names())
			return d, nil
		}
	}
	_ = d.cache.Close(context.Background())
	return nil, err
}

// Set returns the Set serving now. It never returns nil for an open Dir.
func (d *Dir) Set() *Set { return d.cur.Load() }

// Reload loads the directory again if plugins.json or a module it names changed (size,
// modification time, then content). A valid change is swapped in and reported with true; the
// previous Set finishes its calls in flight and closes. An invalid change is rejected with
// the load error, and the previous Set keeps serving; the same rejected content is not
// recompiled again.
func (d *Dir) Reload(ctx context.Context) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false, ErrClosed
	}
	names := []string{ManifestFile}
	if old := d.stamp; len(old) > 0 {
		names = names[:0]
		for _, st := range old {
			names = append(names, st.name)
		}
	}
	if slices.Equal(d.stamps(names), d.stamp) {
		return false, d.rejected
	}
	files, sum, err := d.read()
	if err != nil {
		// Look again next time, whatever changes: the files this load needs are unknown.
		d.stamp, d.rejected = nil, err
		return false, err
	}
	d.stamp = d.stamps(files.names())
	switch {
	case sum == d.sum:
		d.rejected = nil
		return false, nil
	case d.hasBad && sum == d.badSum:
		d.rejected = d.badErr
		return false, d.badErr
	}
	s, err := d.build(ctx, files)
	if err != nil {
		d.badSum, d.badErr, d.hasBad, d.rejected = sum, err, true, err
		return false, err
	}
	d.sum, d.hasBad, d.rejected = sum, false, nil
	old := d.cur.Swap(s)
	old.retire(s)
	return true, nil
}

// Watch calls Reload every interval until ctx is done, logging each reload and each
// rejection (once per rejected content). It blocks; run it in its own goroutine.
func (d *Dir) Watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := d.Reload(ctx)
		switch {
		case errors.Is(err, ErrClosed):
			return
		case err != nil:
			if err.Error() != lastErr {
				d.log.Error("plugins reload rejected; the previous plugins keep serving", "dir", d.dir, "err", err)
			}
			lastErr = err.Error()
		case changed:
			lastErr = ""
			d.log.Info("plugins reloaded", "dir", d.dir, "plugins", d.Set().Names())
		}
	}
}

// Close retires the serving Set, waits for its calls in flight (or for ctx), and releases the
// compilation cache. Later calls to the retired Set return ErrClosed.
func (d *Dir) Close(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	s := d.cur.Load()
	s.retire(nil)
	select {
	case <-s.done:
	case <-ctx.Done():
		return ctx.Err() // the cache stays open for the calls still running
	}
	return d.cache.Close(ctx)
}

// dirFiles is what one load reads: the manifest's entries and each module's bytes.
type dirFiles struct {
	entries []entry
	wasm    map[string][]byte
}

func (f *dirFiles) names() []string {
	names := []string{ManifestFile}
	for _, e := range f.entries {
		if !slices.Contains(names, e.Wasm) {
			names = append(names, e.Wasm)
		}
	}
	return names
}

func (d *Dir) read() (*dirFiles, [32]byte, error) {
	var sum [32]byte
	data, err := os.ReadFile(filepath.Join(d.dir, ManifestFile))
	if err != nil {
		return nil, sum, fmt.Errorf("%w: %v", ErrManifest, err)
	}
	entries, err := parseManifest(data)
	if err != nil {
		return nil, sum, err
	}
	h := sha256.New()
	h.Write(data)
	f := &dirFiles{entries: entries, wasm: map[string][]byte{}}
	for _, name := range f.names()[1:] {
		b, err := os.ReadFile(filepath.Join(d.dir, name))
		if err != nil {
			return nil, sum, fmt.Errorf("%w: %v", ErrModule, err)
		}
		f.wasm[name] = b
		fmt.Fprintf(h, "\x00%s\x00%d\x00", name, len(b))
		h.Write(b)
	}
	h.Sum(sum[:0])
	return f, sum, nil
}

func (d *Dir) stamps(names []string) []fileStamp {
	out := make([]fileStamp, len(names))
	for i, n := range names {
		out[i].name = n
		fi, err := os.Stat(filepath.Join(d.dir, n))
		if err != nil {
			out[i].err = err.Error()
			if errors.Is(err, fs.ErrNotExist) {
				out[i].err = "not exist"
			}
			continue
		}
		out[i].size, out[i].mtime = fi.Size(), fi.ModTime()
	}
	return out
}

// build compiles and validates every plugin of files into a new Set, on a new runtime.
func (d *Dir) build(ctx context.Context, files *dirFiles) (_ *Set, err error) {
	// NewRuntimeConfig selects the compiler on amd64 and arm64.
	cfg := wazero.NewRuntimeConfig().WithCompilationCache(d.cache).WithCloseOnContextDone(true)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	defer func() {
		if err != nil {
			_ = rt.Close(context.Background())
		}
	}()
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		return nil, fmt.Errorf("plugins: wasi: %w", err)
	}
	if err := instantiateHost(ctx, rt); err != nil {
		return nil, fmt.Errorf("plugins: host module: %w", err)
	}
	// Compile each distinct file once (entries may share a module with different configs),
	// in parallel.
	names := files.names()[1:]
	compiled := make(map[string]*compiledFile, len(names))
	var wg sync.WaitGroup
	for _, name := range names {
		c := &compiledFile{}
		compiled[name] = c
		wg.Go(func() {
			start := time.Now()
			c.cm, c.err = rt.CompileModule(ctx, files.wasm[name])
			c.took = time.Since(start)
		})
	}
	wg.Wait()
	s := &Set{rt: rt, log: d.log, done: make(chan struct{}), plugins: make([]*plugin, len(files.entries))}
	errs := make([]error, len(files.entries))
	for i, e := range files.entries {
		wg.Go(func() {
			s.plugins[i], errs[i] = d.load(ctx, rt, e, compiled[e.Wasm])
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, e := range files.entries {
		for _, b := range e.Buckets {
			if why := invalidBucketName(b); b != "*" && why != "" {
				d.log.Warn("plugin names a bucket that cannot exist, so it never applies there", "plugin", e.Name, "bucket", b, "why", why)
			}
		}
	}
	return s, nil
}

type compiledFile struct {
	cm   wazero.CompiledModule
	err  error
	took time.Duration
}

// load checks one entry's compiled module and creates its first instance.
func (d *Dir) load(ctx context.Context, rt wazero.Runtime, e entry, c *compiledFile) (*plugin, error) {
	start := time.Now()
	if c.err != nil {
		return nil, fmt.Errorf("%w: plugin %q (%s): %v", ErrModule, e.Name, e.Wasm, c.err)
	}
	cm := c.cm
	if err := checkModule(e.Name, cm, e.MemoryPages); err != nil {
		return nil, fmt.Errorf("%w (%s)", err, e.Wasm)
	}
	p := newPlugin(e, rt, cm, d.log)
	p.slots <- struct{}{}
	in, err := p.newInstance(ctx)
	if err != nil {
		return nil, fmt.Errorf("plugins: plugin %q (%s): first instance: %w", e.Name, e.Wasm, err)
	}
	if err := in.checkVersion(ctx); err != nil {
		return nil, fmt.Errorf("%w (%s)", err, e.Wasm)
	}
	p.loadTime = c.took + time.Since(start)
	p.put(in)
	return p, nil
}
