package backendtest

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// Shared servers: one PostgreSQL and one versitygw for a whole test binary, for suites (the
// gateway's end-to-end tests) that open hundreds of engines and would spend minutes starting a
// server for each. A package that uses them calls StopShared from its TestMain.

var shared struct {
	mu       sync.Mutex
	postgres *Server
	pgErr    error
	s3       *s3Server
	s3Err    error
	prefixes int
}

// SharedStore returns engine options for a fresh store of the kind WEIR_TEST_STORE names, on
// the shared servers: "" (or "pebble") gives empty values, the embedded store; "postgres"
// gives a new database; "postgres+s3" a new database and a new prefix of the shared versitygw
// bucket; "pebble+s3" the prefix only; "pebble+inline" and "postgres+inline" keep all data in
// the metadata store (--blobs inline).
func SharedStore(t testing.TB) (store, blobs string) {
	t.Helper()
	kind := os.Getenv("WEIR_TEST_STORE")
	switch kind {
	case "", "pebble", "postgres", "postgres+s3", "pebble+s3", "pebble+inline", "postgres+inline":
	default:
		t.Fatalf("WEIR_TEST_STORE=%s: want pebble, postgres, postgres+s3, pebble+s3, pebble+inline or postgres+inline", kind)
	}
	if strings.HasPrefix(kind, "postgres") {
		store = PostgresDatabase(t, sharedPostgres(t))
	}
	switch {
	case strings.HasSuffix(kind, "+s3"):
		blobs = sharedS3(t)
	case strings.HasSuffix(kind, "+inline"):
		blobs = "inline" // engine.BlobsInline: this package does not import the engine
	}
	return store, blobs
}

func sharedPostgres(t testing.TB) string {
	t.Helper()
	if url := os.Getenv("WEIR_TEST_POSTGRES"); url != "" {
		return url
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.postgres == nil && shared.pgErr == nil {
		bin := binDir()
		if bin == "" {
			Skip(t, "PostgreSQL (initdb and pg_ctl; set WEIR_POSTGRES_BIN or WEIR_TEST_POSTGRES)")
		}
		shared.postgres, shared.pgErr = start(bin)
	}
	if shared.pgErr != nil {
		t.Fatalf("start PostgreSQL: %v", shared.pgErr)
	}
	return shared.postgres.URL
}

func sharedS3(t testing.TB) string {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.s3 == nil && shared.s3Err == nil {
		bin := versitygw()
		if bin == "" {
			Skip(t, "versitygw (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")
		}
		shared.s3, shared.s3Err = startS3(bin)
	}
	if shared.s3Err != nil {
		t.Fatalf("start versitygw: %v", shared.s3Err)
	}
	shared.prefixes++
	return fmt.Sprintf("%s/store-%d", shared.s3.url, shared.prefixes)
}

// StopShared stops the shared servers; call it from TestMain after m.Run.
func StopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.postgres != nil {
		shared.postgres.stop()
		shared.postgres = nil
	}
	if shared.s3 != nil {
		shared.s3.stop()
		shared.s3 = nil
	}
}
