package gateway_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/weirproject/weir/engine"
	"github.com/weirproject/weir/gateway"
	"github.com/weirproject/weir/policies"
)

const (
	rootAK = "ROOTACCESSKEY"
	rootSK = "root-secret-key-for-tests"
	userAK = "ALICEACCESSKEY"
	userSK = "alice-secret-key-for-tests"
	bobAK  = "BOBACCESSKEY"
	bobSK  = "bob-secret-key-for-tests"
)

// testServer is a real weir gateway over a real engine on a loopback port.
type testServer struct {
	URL    string // http(s)://127.0.0.1:port
	Engine *engine.Engine
	Server *gateway.Server
	TLS    bool
	client *http.Client

	mu         sync.Mutex
	transports []*http.Transport // closed before shutdown: a connection a client dialled but never used keeps Shutdown waiting 5 s
}

type serverOptions struct {
	TLS         bool
	MinPartSize int64
	Domains     []string
	Now         func() time.Time
	// Clock is the engine's clock (lease expiry); nil means time.Now.
	Clock func() time.Time
	// Policy, when set, is Rego (file name → source) that runs as the decision step.
	Policy map[string]string
	// Plugins, when set, run before the policy.
	Plugins gateway.PluginSource
	// Log, when set, receives the server's info-level log, with decision logging on.
	Log *syncBuffer
	// Region is the region the server reports; empty means the gateway's default.
	Region string
	// IdleBodyTimeout, RejectedBodyDrainTimeout and MaxInflight: the gateway's limits (0: defaults).
	IdleBodyTimeout, RejectedBodyDrainTimeout time.Duration
	MaxInflight                               int
	// SeparateAdmin moves /healthz, /readyz and /metrics off the S3 port (--admin-addr).
	SeparateAdmin bool
	// MaxBucketsPerUser: the per-user bucket quota (0: the default).
	MaxBucketsPerUser int
}

// syncBuffer is a log sink the test reads while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// startServer starts weir on 127.0.0.1:0 and stops it when the test ends.
func startServer(t testing.TB, o serverOptions) *testServer {
	t.Helper()
	eng, err := engine.Open(engine.Options{Dir: t.TempDir(), MinPartSize: o.MinPartSize, Clock: o.Clock})
	if err != nil {
		t.Fatal(err)
	}
	level := slog.LevelWarn
	if os.Getenv("WEIR_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if o.Log != nil {
		logger = slog.New(slog.NewTextHandler(o.Log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	var policy gateway.PolicySource
	if o.Policy != nil {
		p, err := policies.Compile(context.Background(), o.Policy)
		if err != nil {
			t.Fatal(err)
		}
		policy = p
	}
	srv, err := gateway.New(gateway.Config{
		Policy:  policy,
		Plugins: o.Plugins,
		Engine:  eng,
		Users: []gateway.User{
			{Name: "root", AccessKey: rootAK, SecretKey: rootSK, Root: true},
			{Name: "alice", AccessKey: userAK, SecretKey: userSK, Groups: []string{"team-a"}},
			{Name: "bob", AccessKey: bobAK, SecretKey: bobSK, Groups: []string{"team-b"}},
		},
		Domains:     o.Domains,
		Region:      o.Region,
		Now:         o.Now,
		Logger:      logger,
		DecisionLog: o.Log != nil,

		IdleBodyTimeout:          o.IdleBodyTimeout,
		RejectedBodyDrainTimeout: o.RejectedBodyDrainTimeout,
		MaxInflight:              o.MaxInflight,
		SeparateAdmin:            o.SeparateAdmin,
		MaxBucketsPerUser:        o.MaxBucketsPerUser,
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Engine: eng, Server: srv, TLS: o.TLS, client: http.DefaultClient}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	if o.TLS {
		hts := httptest.NewUnstartedServer(srv)
		hts.Listener.Close()
		hts.Listener = l
		hts.StartTLS()
		ts.URL = hts.URL
		ts.client = hts.Client()
		go func() { <-ctx.Done(); hts.Close(); done <- nil }()
	} else {
		ts.URL = "http://" + l.Addr().String()
		// Raw requests get their own transport, closed at the end like the SDK clients': on
		// http.DefaultTransport a connection dialled but never used kept Shutdown waiting.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		ts.client = &http.Client{Transport: tr}
		ts.transports = append(ts.transports, tr)
		go func() { done <- srv.Serve(ctx, l, 5*time.Second) }()
	}
	t.Cleanup(func() {
		ts.mu.Lock()
		for _, tr := range ts.transports {
			tr.CloseIdleConnections()
		}
		ts.mu.Unlock()
		cancel()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
		if err := eng.Close(); err != nil {
			t.Errorf("engine close: %v", err)
		}
	})
	return ts
}

// client returns an aws-sdk-go-v2 S3 client with default settings (path-style, the SDK's
// default checksum behaviour) signed as the given user.
func (ts *testServer) client3(ak, sk string, opts ...func(*s3.Options)) *s3.Client {
	// As the SDK's default transport: bodies over 2 MiB go with Expect: 100-continue, and the
	// client waits a second for the go-ahead, so a refused upload is never sent.
	tr := &http.Transport{MaxIdleConnsPerHost: 64, ExpectContinueTimeout: time.Second}
	if ts.TLS {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	}
	ts.mu.Lock()
	ts.transports = append(ts.transports, tr)
	ts.mu.Unlock()
	httpc := &http.Client{Transport: tr}
	base := []func(*s3.Options){func(o *s3.Options) {
		o.BaseEndpoint = aws.String(ts.URL)
		o.UsePathStyle = true
		o.Region = "us-east-1"
		o.Credentials = credentials.NewStaticCredentialsProvider(ak, sk, "")
		o.HTTPClient = httpc
		o.RetryMaxAttempts = 1
	}}
	return s3.New(s3.Options{}, append(base, opts...)...)
}

func (ts *testServer) root(opts ...func(*s3.Options)) *s3.Client {
	return ts.client3(rootAK, rootSK, opts...)
}

// apiCode returns the S3 error code of err ("" if err is nil or not an S3 API error).
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// httpStatus returns the HTTP status of a failed SDK call (0 if none).
func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func readAll(t testing.TB, r io.ReadCloser) []byte {
	t.Helper()
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// metric returns the value of the /metrics sample named exactly series (name and labels as
// Prometheus prints them), or -1 when there is none.
func (ts *testServer) metric(t testing.TB, series string) float64 {
	t.Helper()
	resp, err := ts.client.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(readAll(t, resp.Body)), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %q", series, v)
			}
			return f
		}
	}
	return -1
}
