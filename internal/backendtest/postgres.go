// Package backendtest gives tests the outside servers a shared weir runs over, each its own and
// thrown away when the test ends: a PostgreSQL cluster made with initdb and pg_ctl in a temporary
// directory, and versitygw as a third-party S3 server for data. Every package whose tests need
// them uses it, so they all find the programs the same way and skip (or, under CI=true, fail)
// the same way when one is missing.
//
// It never downloads anything: it uses the PostgreSQL installed on the machine (the directory in
// WEIR_POSTGRES_BIN, else /usr/lib/postgresql/<version>/bin, else initdb on the PATH) or a server
// someone already runs, named by WEIR_TEST_POSTGRES; and versitygw from the PATH or $GOPATH/bin.
package backendtest

import (
	"context"
	"fmt"
	"net"
	neturl "net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Skip skips t with a message naming what is missing, or fails it when CI=true: CI must provide
// every program the tests need, so a skip there would hide a test that never ran.
func Skip(t testing.TB, missing string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required when CI=true", missing)
	}
	t.Skipf("%s not available: skipping", missing)
}

// Postgres returns the URL of an empty PostgreSQL database for t. With WEIR_TEST_POSTGRES set it
// returns that URL (the tests then share that server's database); otherwise it starts a server
// for t alone (~1.5 s) and stops it when t ends. Without PostgreSQL it skips t (see Skip).
func Postgres(t testing.TB) string {
	t.Helper()
	if url := os.Getenv("WEIR_TEST_POSTGRES"); url != "" {
		return url
	}
	bin := binDir()
	if bin == "" {
		Skip(t, "PostgreSQL (initdb and pg_ctl; set WEIR_POSTGRES_BIN or WEIR_TEST_POSTGRES)")
	}
	s, err := start(bin)
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(s.stop)
	return s.URL
}

// PostgresDatabase creates an empty database of its own for t on the server at url (from Postgres) and
// returns its URL, so that tests sharing one server do not see each other's tables.
func PostgresDatabase(t testing.TB, url string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("weir_test_%d_%d", os.Getpid(), databases.Add(1))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

var databases atomic.Int64

// PostgresServer starts a PostgreSQL server for t alone, which the test may stop and start
// again (an outage), and stops it when t ends. It ignores WEIR_TEST_POSTGRES: a shared server
// cannot be stopped for one test.
func PostgresServer(t testing.TB) *Server {
	t.Helper()
	bin := binDir()
	if bin == "" {
		Skip(t, "PostgreSQL (initdb and pg_ctl; set WEIR_POSTGRES_BIN)")
	}
	s, err := start(bin)
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(s.stop)
	return s
}

// Server is a running throwaway PostgreSQL.
type Server struct {
	URL  string
	Port int
	dir  string
	bin  string
	opts string // the server options pg_ctl start passes
}

// Kill stops the server at once, as a crash would (pg_ctl stop -m immediate).
func (s *Server) Kill() error {
	out, err := s.run("pg_ctl", "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w", "stop")
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %v: %s", err, out)
	}
	return nil
}

// Start starts a killed server again, on the same port.
func (s *Server) Start() error {
	out, err := s.run("pg_ctl", "-D", filepath.Join(s.dir, "data"), "-o", s.opts, "-l", filepath.Join(s.dir, "log"), "-w", "start")
	if err != nil {
		return fmt.Errorf("pg_ctl start: %v: %s", err, out)
	}
	return nil
}

// binDir finds the directory holding initdb and pg_ctl, or "".
func binDir() string {
	if d := os.Getenv("WEIR_POSTGRES_BIN"); d != "" {
		return d
	}
	// The newest installed version first.
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// start makes a cluster in a new temporary directory and starts it. initdb refuses to run as
// root, so as root the cluster belongs to the postgres user and every command runs as it.
func start(bin string) (*Server, error) {
	dir, err := os.MkdirTemp("", "weir-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root needs a postgres user to own the cluster: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := s.run("initdb", "-D", data, "-U", "weir", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	for attempt := 0; ; attempt++ {
		s.Port, err = freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		// The socket directory is the cluster's own: nothing else on the machine is touched.
		s.opts = fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", s.Port, dir)
		out, err := s.run("pg_ctl", "-D", data, "-o", s.opts, "-l", filepath.Join(dir, "log"), "-w", "start")
		if err == nil {
			break
		}
		if attempt == 2 { // another process took the port between freePort and the start
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pg_ctl start: %v: %s\n%s", err, out, log)
		}
	}
	s.URL = fmt.Sprintf("postgres://weir@127.0.0.1:%d/postgres?sslmode=disable", s.Port)
	return s, nil
}

// run runs a PostgreSQL program as the cluster's owner.
func (s *Server) run(prog string, args ...string) ([]byte, error) {
	path := filepath.Join(s.bin, prog)
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = s.dir
	out, err := cmd.CombinedOutput()
	return []byte(strings.TrimSpace(string(out))), err
}

func (s *Server) stop() {
	s.run("pg_ctl", "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w", "stop")
	os.RemoveAll(s.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
