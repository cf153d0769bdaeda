// Package weirtest starts a real weir gateway over a real engine on a loopback port, for the
// tests of the client examples and of docs/clients.md.
package weirtest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/weirproject/weir/engine"
	"github.com/weirproject/weir/gateway"
)

// The root credentials of every test server.
const (
	AccessKey = "EXAMPLEROOTKEY"
	SecretKey = "example-root-secret-key"
)

// Start serves weir on 127.0.0.1:0 until the test ends and returns its endpoint
// ("http://127.0.0.1:port").
func Start(t testing.TB) string {
	t.Helper()
	eng, err := engine.Open(engine.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	level := slog.LevelWarn
	if os.Getenv("WEIR_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	srv, err := gateway.New(gateway.Config{
		Engine: eng,
		Users:  []gateway.User{{Name: "root", AccessKey: AccessKey, SecretKey: SecretKey, Root: true}},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l, 2*time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
		if err := eng.Close(); err != nil {
			t.Errorf("engine close: %v", err)
		}
	})
	return "http://" + l.Addr().String()
}
