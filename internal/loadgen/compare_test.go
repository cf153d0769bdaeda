package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMedianAndRatio(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{5}, 5}, {[]float64{3, 1}, 2}, {[]float64{9, 1, 5}, 5}, {[]float64{4, 1, 3, 100}, 3.5}} {
		in := append([]float64(nil), c.in...)
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
		for i := range in { // the caller's slice is left alone
			if in[i] != c.in[i] {
				t.Fatalf("Median sorted its argument: %v", c.in)
			}
		}
	}
	if Ratio(6, 2) != 3 || Ratio(1, 0) != 0 {
		t.Fatal("Ratio")
	}
}

func TestSummarize(t *testing.T) {
	jobs := []Job{{"put", "4KiB", 4096}, {"get", "4KiB", 4096}}
	var runs []RunRecord
	add := func(ep string, round int, w string, ops, p50 float64, errs int64) {
		runs = append(runs, RunRecord{Round: round, Measures: Measures{Endpoint: ep, Workload: w, SizeLabel: "4KiB", Size: 4096, OpsPerSec: ops, P50ms: p50, P99ms: 2 * p50, Errors: errs}})
	}
	// A B A B, with a third round for the median to pick the middle.
	add("weir", 1, "put", 3000, 5, 0)
	add("minio", 1, "put", 800, 19, 0)
	add("weir", 2, "put", 2800, 6, 0)
	add("minio", 2, "put", 700, 20, 2)
	add("weir", 3, "put", 3600, 4, 0)
	add("minio", 3, "put", 1000, 18, 0)
	add("weir", 1, "get", 6000, 2, 0)
	add("minio", 1, "get", 0, 0, 5) // nothing worked
	s := Summarize(jobs, []string{"weir", "minio"}, runs)
	if len(s) != 4 {
		t.Fatalf("%d rows", len(s))
	}
	w, m := s[0], s[1]
	if w.Endpoint != "weir" || w.OpsPerSec != 3000 || w.P50ms != 5 || w.Rounds != 3 || w.FirstOverThis != 0 {
		t.Fatalf("weir put: %+v", w)
	}
	if m.OpsPerSec != 800 || m.P99ms != 38 || m.Errors != 2 || m.FirstOverThis != 3000.0/800 || len(m.OpsByRound) != 3 {
		t.Fatalf("minio put: %+v", m)
	}
	if s[3].FirstOverThis != 0 || s[3].Errors != 5 {
		t.Fatalf("minio get: %+v", s[3])
	}
}

func TestParseEndpoint(t *testing.T) {
	e, err := ParseEndpoint("minio=http://127.0.0.1:9001/@minioadmin:se:c@ret")
	if err != nil || e != (Endpoint{Name: "minio", URL: "http://127.0.0.1:9001", AccessKey: "minioadmin", SecretKey: "se:c@ret"}) {
		t.Fatalf("%+v %v", e, err)
	}
	e, err = ParseEndpoint(" weir=https://s3.example:443 ")
	if err != nil || e != (Endpoint{Name: "weir", URL: "https://s3.example:443"}) {
		t.Fatalf("%+v %v", e, err)
	}
	for _, bad := range []string{"http://x", "=http://x", "a=", "a=127.0.0.1:9000", "a=http://x@AK", "a=http://x@:SK"} {
		if _, err := ParseEndpoint(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	// The flag takes comma-separated lists and may be repeated.
	var f endpointFlag
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Var(&f, "compare", "")
	if err := fs.Parse([]string{"-compare", "a=http://h:1,b=http://h:2@K:S", "--compare", "c=http://h:3"}); err != nil {
		t.Fatal(err)
	}
	if len(f) != 3 || f[0].Name != "a" || f[1].SecretKey != "S" || f[2].URL != "http://h:3" {
		t.Fatalf("%+v", f)
	}
}

func TestParseJobs(t *testing.T) {
	jobs, err := ParseJobs("put,get, conditional-put:4KiB,hot-key:16+1MiB", "4KiB,1MiB")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, j := range jobs {
		got = append(got, j.Workload+"/"+j.SizeLabel)
	}
	if want := "put/4KiB put/1MiB get/4KiB get/1MiB conditional-put/4KiB hot-key/16 hot-key/1MiB"; strings.Join(got, " ") != want {
		t.Fatalf("got %v", got)
	}
	if jobs[1].Size != 1<<20 {
		t.Fatal(jobs[1])
	}
	for _, bad := range [][2]string{{"putt", "4KiB"}, {"put", "4XB"}, {"", "4KiB"}, {"put:", "4KiB"}} {
		if _, err := ParseJobs(bad[0], bad[1]); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

func TestWriteSVG(t *testing.T) {
	rep := Report{Time: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC), Host: "2 cores <&> test", Concurrency: 16, Duration: "10s", Rounds: 2,
		Endpoints: []Endpoint{{Name: "weir"}, {Name: "minio"}, {Name: "versity<gw>"}}}
	rep.Summary = Summarize([]Job{{"put", "4KiB", 4096}, {"get", "1MiB", 1 << 20}}, []string{"weir", "minio", "versity<gw>"}, []RunRecord{
		{Measures: Measures{Endpoint: "weir", Workload: "put", Size: 4096, SizeLabel: "4KiB", OpsPerSec: 3060, P50ms: 4.7, P99ms: 12}},
		{Measures: Measures{Endpoint: "minio", Workload: "put", Size: 4096, SizeLabel: "4KiB", OpsPerSec: 789, P50ms: 19.3, P99ms: 40}},
		{Measures: Measures{Endpoint: "versity<gw>", Workload: "put", Size: 4096, SizeLabel: "4KiB", OpsPerSec: 1234, P50ms: 9, P99ms: 30, Errors: 3}},
		{Measures: Measures{Endpoint: "weir", Workload: "get", Size: 1 << 20, SizeLabel: "1MiB", OpsPerSec: 1053, P50ms: 14, P99ms: 30}},
		{Measures: Measures{Endpoint: "minio", Workload: "get", Size: 1 << 20, SizeLabel: "1MiB", OpsPerSec: 821, P50ms: 18, P99ms: 35}},
		{Measures: Measures{Endpoint: "versity<gw>", Workload: "get", Size: 1 << 20, SizeLabel: "1MiB"}},
	})
	var b bytes.Buffer
	if err := WriteSVG(&b, rep); err != nil {
		t.Fatal(err)
	}
	// Well-formed XML, an <svg> root, one bar per endpoint and group in each chart.
	dec := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	rects, root := 0, ""
	var texts []string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, b.String())
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = el.Name.Local
			}
			if el.Name.Local == "rect" {
				rects++
			}
		case xml.CharData:
			if s := strings.TrimSpace(string(el)); s != "" {
				texts = append(texts, s)
			}
		}
	}
	all := strings.Join(texts, "|")
	// 1 background + legends (3 + 3+2) + ops bars 6 + latency bars 12.
	if root != "svg" || rects != 1+3+5+6+12 {
		t.Fatalf("root %q, %d rects", root, rects)
	}
	for _, want := range []string{"weir", "minio", "versity<gw>", "put", "4KiB", "get", "1MiB", "3,060", "789", "1,234!", "4.70", "12.0", "p50", "p99", "2 cores <&> test"} {
		if !strings.Contains(all, want) {
			t.Errorf("SVG text lacks %q", want)
		}
	}
}

// TestCompareAgainstWeir runs -compare end to end: two names for one in-process server (one
// with its own credentials), two rounds, JSON and plot files; then an endpoint with a wrong
// secret, whose errors must show and fail the command.
func TestCompareAgainstWeir(t *testing.T) {
	ep := startWeir(t)
	dir := t.TempDir()
	var out bytes.Buffer
	args := []string{"-access-key", testAK, "-secret-key", testSK, "-compare", "a=" + ep, "-compare", "b=" + ep + "@" + testAK + ":" + testSK,
		"-workload", "put,get:1KiB", "-size", "4KiB", "-duration", "300ms", "-concurrency", "2", "-objects", "8",
		"-json-file", filepath.Join(dir, "r.json"), "-plot", filepath.Join(dir, "r.svg")}
	if err := Main(context.Background(), args, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	tab := out.String()
	for _, want := range []string{"endpoint", "ratio", "ops/s by round", "a/b ", "×", "put", "get", "1KiB"} {
		if !strings.Contains(tab, want) {
			t.Fatalf("table lacks %q:\n%s", want, tab)
		}
	}
	var rep Report
	b, err := os.ReadFile(filepath.Join(dir, "r.json"))
	if err != nil || json.Unmarshal(b, &rep) != nil {
		t.Fatalf("json: %v %s", err, b)
	}
	if len(rep.Runs) != 2*2*2 || len(rep.Summary) != 4 || rep.Rounds != 2 || strings.Contains(string(b), testSK) {
		t.Fatalf("json: %d runs, %d rows, secrets? %s", len(rep.Runs), len(rep.Summary), b)
	}
	// A B A B: runs alternate endpoints within a workload.
	if r := rep.Runs; r[0].Endpoint != "a" || r[1].Endpoint != "b" || r[2].Endpoint != "a" || r[2].Round != 2 {
		t.Fatalf("order: %+v", r[:3])
	}
	for _, s := range rep.Summary {
		if s.OpsPerSec <= 0 || s.Errors != 0 || (s.Endpoint == "b" && s.FirstOverThis <= 0) {
			t.Fatalf("summary %+v", s)
		}
	}
	if svg, err := os.ReadFile(filepath.Join(dir, "r.svg")); err != nil || !bytes.Contains(svg, []byte("</svg>")) {
		t.Fatalf("svg: %v", err)
	}

	out.Reset()
	err = Main(context.Background(), []string{"-access-key", testAK, "-secret-key", testSK, "-compare", "good=" + ep + ",bad=" + ep + "@" + testAK + ":wrong",
		"-workload", "put", "-size", "1KiB", "-duration", "200ms", "-concurrency", "1", "-rounds", "1"}, &out)
	if err == nil || !strings.Contains(err.Error(), "bad") || !strings.Contains(out.String(), "ERRORS put 1KiB on bad") {
		t.Fatalf("wrong secret: err %v\n%s", err, out.String())
	}

	// -h prints the usage and is not an error.
	out.Reset()
	if err := Main(context.Background(), []string{"-h"}, &out); err != nil || !strings.Contains(out.String(), "-compare") {
		t.Fatalf("-h: %v\n%s", err, out.String())
	}
	if err := Main(context.Background(), []string{"-plot", "x.png", "-access-key", "a", "-secret-key", "b"}, io.Discard); err == nil {
		t.Fatal("-plot .png accepted")
	}
	if err := Main(context.Background(), []string{"-compare", "a=http://x", "-compare", "a=http://y", "-access-key", "a", "-secret-key", "b"}, io.Discard); err == nil {
		t.Fatal("duplicate names accepted")
	}
}
