package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weirproject/weir/engine/internal/keys"
)

// Large bodies bypass the write-ahead log and the memtable: their chunks are written into an
// sstable of their own, which is fsynced and ingested into the store before the commit. Every
// byte is then written once, instead of once to the WAL and again when the memtable flushes.

type tableWriter struct {
	path string
	w    *sstable.Writer
}

func (t *tableWriter) abort() {
	if t.w != nil {
		_ = t.w.Close()
		t.w = nil
	}
	_ = os.Remove(t.path)
}

// writeLargeChunk adds a chunk of a body that spans more than one chunk. The first call records
// the in-flight marker, synced, so that a crash after the ingestion still finds the data to
// reclaim, and opens the table.
func (e *Engine) writeLargeChunk(s *stagedData, idx uint32, data []byte) error {
	if s.table == nil {
		if err := e.db.Set(keys.Marker(s.id), nil, pebble.Sync); err != nil {
			return err
		}
		s.flushed = true
		dir := filepath.Join(e.dir, "ingest")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		path := filepath.Join(dir, fmt.Sprintf("%016x.sst", s.id))
		f, err := vfs.Default.Create(path, vfs.WriteCategoryUnspecified)
		if err != nil {
			return err
		}
		s.table = &tableWriter{path: path, w: sstable.NewWriter(objstorageprovider.NewFileWritable(f), e.popts.MakeWriterOptions(6, e.db.TableFormat()))}
	}
	return s.table.w.Set(keys.Chunk(s.id, idx), data)
}

// ingest finishes the table (fsyncing it) and ingests it.
func (e *Engine) ingest(s *stagedData) error {
	t := s.table
	err := t.w.Close()
	t.w = nil
	if err == nil {
		err = e.db.Ingest(context.Background(), []string{t.path})
	}
	_ = os.Remove(t.path) // ingestion linked it into the store; on failure it is garbage
	s.table = nil
	return err
}
