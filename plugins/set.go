package plugins

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/weirproject/weir/sdk/abi"
)

// Decision is the outcome of running a [Set] on one request.
type Decision struct {
	Verdict  abi.Verdict  // Pass, Propose or Deny
	Strategy abi.Strategy // with Propose: last-writer-wins, etag or lease
	Reason   string       // with Deny: the plugin's reason
	Plugin   string       // the plugin that denied, or whose proposal stands
}

// Stats describes one plugin of a Set.
type Stats struct {
	Name     string
	LoadTime time.Duration // compiling the module and creating its first instance
	PoolSize int           // the most instances that may exist at once
	Live     int           // instances that exist now, idle or in a call
	// ResidentBytes is the linear memory of the live instances, at most MaxResidentBytes
	// (PoolSize × memory_pages × 64 KiB).
	ResidentBytes    int64
	MaxResidentBytes int64
	Faults           uint64 // calls that faulted since the Set was loaded
	// Calls into the guest since the Set was loaded, and their total wall-clock time: their
	// ratio is the plugin's mean call time.
	Calls    uint64
	CallTime time.Duration
}

// Set is one loaded generation of a plugins directory: compiled modules with their instance
// pools, in run order. It is safe for concurrent use. A Set is immutable; a reload builds a new
// one and retires the old, which closes once its last call returns (calls that arrive after
// that are forwarded to its successor).
type Set struct {
	plugins []*plugin
	rt      wazero.Runtime
	log     *slog.Logger
	bufs    sync.Pool // *[]byte, record buffers

	refs      atomic.Int64
	retired   atomic.Bool
	next      atomic.Pointer[Set]
	closeOnce sync.Once
	done      chan struct{}
}

// Needs reports whether any plugin that matches bucket and key reads the object's metadata or
// the request's headers (the manifest's "reads"), so the caller fills only what will be read.
func (s *Set) Needs(bucket, key string) (object, headers bool) {
	if s == nil {
		return false, false
	}
	for _, p := range s.plugins {
		if p.e.matches(bucket, key) {
			object = object || p.e.readsObject
			headers = headers || p.e.readsHeaders
		}
	}
	return object, headers
}

// Decide runs the plugins that match in's bucket and key, in order. The first deny ends the
// run and is returned; otherwise the last proposal stands (a later plugin overrides an
// earlier one); otherwise the verdict is Pass. A nil Set, or one where no plugin matches,
// passes without touching wasm.
//
// A plugin fault returns a [*FaultError] (errors.Is(err, ErrFault)) and a zero Decision: the
// gateway should fail the request closed. A plugin with fail_open counts as passing instead;
// the fault is logged either way. An error from ctx (the caller gave up) is returned wrapped.
func (s *Set) Decide(ctx context.Context, in *abi.Input) (Decision, error) {
	if s == nil {
		return Decision{Verdict: abi.Pass}, nil
	}
	first := -1
	for i, p := range s.plugins {
		if p.e.matches(in.Bucket.Name, in.Object.Key) {
			first = i
			break
		}
	}
	if first < 0 {
		return Decision{Verdict: abi.Pass}, nil
	}
	if !s.acquire() {
		if n := s.next.Load(); n != nil {
			return n.Decide(ctx, in)
		}
		return Decision{}, ErrClosed
	}
	defer s.release()

	bp, _ := s.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	rec := in.AppendRecord((*bp)[:0])
	defer func() { *bp = rec; s.bufs.Put(bp) }()

	d := Decision{Verdict: abi.Pass}
	for _, p := range s.plugins[first:] {
		if !p.e.matches(in.Bucket.Name, in.Object.Key) {
			continue
		}
		r, reason, err := p.call(ctx, rec)
		if err != nil {
			if p.e.FailOpen && errors.Is(err, ErrFault) {
				continue // logged by call
			}
			return Decision{}, err
		}
		switch r.Verdict() {
		case abi.Deny:
			if reason == "" {
				reason = "denied by plugin " + p.e.Name
			}
			return Decision{Verdict: abi.Deny, Reason: reason, Plugin: p.e.Name}, nil
		case abi.Propose:
			d = Decision{Verdict: abi.Propose, Strategy: r.Strategy(), Plugin: p.e.Name}
		}
	}
	return d, nil
}

// Stats returns one entry per plugin, in run order. It is nil for a nil Set.
func (s *Set) Stats() []Stats {
	if s == nil {
		return nil
	}
	out := make([]Stats, len(s.plugins))
	for i, p := range s.plugins {
		out[i] = Stats{
			Name:             p.e.Name,
			LoadTime:         p.loadTime,
			PoolSize:         p.e.PoolSize,
			Live:             len(p.slots),
			ResidentBytes:    p.resident.Load(),
			MaxResidentBytes: int64(p.e.PoolSize) * int64(p.e.MemoryPages) * pageSize,
			Faults:           p.faults.Load(),
			Calls:            p.calls.Load(),
			CallTime:         time.Duration(p.callTime.Load()),
		}
	}
	return out
}

// Names returns the plugins' names in run order.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	names := make([]string, len(s.plugins))
	for i, p := range s.plugins {
		names[i] = p.e.Name
	}
	return names
}

func (s *Set) acquire() bool {
	s.refs.Add(1)
	if s.retired.Load() {
		s.release()
		return false
	}
	return true
}

func (s *Set) release() {
	if s.refs.Add(-1) == 0 && s.retired.Load() {
		s.close()
	}
}

// retire stops s from taking new calls (they go to next, or fail with ErrClosed when next
// is nil) and closes it once the calls in flight return.
func (s *Set) retire(next *Set) {
	s.next.Store(next)
	s.retired.Store(true)
	if s.refs.Load() == 0 {
		s.close()
	}
}

func (s *Set) close() {
	s.closeOnce.Do(func() {
		_ = s.rt.Close(context.Background())
		close(s.done)
	})
}
