package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/weirproject/weir/gateway/gatewaytest"
)

func init() { progressOut = io.Discard }

func startWeir(t *testing.T) string { return gatewaytest.Start(t, gatewaytest.Options{}).URL }

const (
	testAK = gatewaytest.RootAccessKey
	testSK = gatewaytest.RootSecretKey
)

// TestBenchAgainstWeir runs every workload briefly against a real server and checks the report
// counts real, error-free operations.
func TestBenchAgainstWeir(t *testing.T) {
	ep := startWeir(t)
	for _, w := range []string{"put", "get", "mixed", "list", "conditional-put", "hot-key", "lease-cycle"} {
		res, err := Run(context.Background(), Config{Endpoint: ep, AccessKey: testAK, SecretKey: testSK, Bucket: "bench-test",
			Workload: w, ObjectSize: 4096, Concurrency: 4, Duration: 300 * time.Millisecond, Objects: 16})
		if err != nil {
			t.Fatalf("%s: %v", w, err)
		}
		if res.Ops < 10 || res.Errors != 0 || res.P50 <= 0 || res.P99 < res.P50 {
			t.Fatalf("%s: implausible result %+v", w, res)
		}
		// Four writers on one key with If-Match: some must lose, and wins+losses are every op.
		if w == "hot-key" && (res.Wins == 0 || res.Losses == 0 || res.Wins+res.Losses != res.Ops) {
			t.Fatalf("hot-key: %d wins, %d losses of %d ops", res.Wins, res.Losses, res.Ops)
		}
	}
	// Errors are counted and make the run fail: a wrong secret fails every operation.
	_, err := Run(context.Background(), Config{Endpoint: ep, AccessKey: testAK, SecretKey: "wrong", Bucket: "bench-test", Workload: "put", ObjectSize: 10, Concurrency: 1, Duration: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("wrong secret: %v", err)
	}
	var out bytes.Buffer
	if err := Main(context.Background(), []string{"-endpoint", ep, "-access-key", testAK, "-secret-key", testSK, "-workload", "put", "-size", "1KiB", "-duration", "200ms", "-concurrency", "2"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "ops/s") || !strings.Contains(out.String(), "1KiB") {
		t.Fatalf("table: %s", out.String())
	}
	out.Reset()
	if err := Main(context.Background(), []string{"-endpoint", ep, "-access-key", testAK, "-secret-key", testSK, "-workload", "hot-key", "-size", "16", "-duration", "200ms", "-concurrency", "4", "-json"}, &out); err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || len(rep.Runs) != 1 || len(rep.Summary) != 1 || rep.Runs[0].OpsPerSec <= 0 || rep.Summary[0].WinShare <= 0 {
		t.Fatalf("-json: %v %s", err, out.String())
	}
}

// TestBenchSpreadsOverGateways: -endpoint A,B puts half the workers on each endpoint. The two
// servers here keep separate stores, so what each one holds shows who was sent what.
func TestBenchSpreadsOverGateways(t *testing.T) {
	a, b := startWeir(t), startWeir(t)
	ctx := context.Background()
	for _, ep := range []string{a, b} {
		if _, err := NewClient(Config{Endpoint: ep, AccessKey: testAK, SecretKey: testSK}).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("spread")}); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := Main(ctx, []string{"-endpoint", a + "," + b, "-access-key", testAK, "-secret-key", testSK, "-bucket", "spread",
		"-workload", "put", "-size", "1KiB", "-duration", "300ms", "-concurrency", "4", "-json"}, &out); err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || len(rep.Runs) != 1 {
		t.Fatalf("-json: %v %s", err, out.String())
	}
	var total int64
	for _, ep := range []string{a, b} {
		var n int64
		pages := s3.NewListObjectsV2Paginator(NewClient(Config{Endpoint: ep, AccessKey: testAK, SecretKey: testSK}), &s3.ListObjectsV2Input{Bucket: aws.String("spread")})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n += int64(len(page.Contents))
		}
		if n == 0 {
			t.Fatalf("%s was sent no PUT of the run over %s,%s", ep, a, b)
		}
		total += n
	}
	// An operation cut off by the end of the run may have been stored without being counted.
	if ops := rep.Runs[0].Ops; total < ops || total > ops+4 {
		t.Fatalf("the two servers hold %d objects; the run counted %d PUTs", total, ops)
	}
}
