package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/weirproject/weir/policies"
)

// An operator's policy: owners and root as by default; buckets tagged critical are never
// last-writer-wins (etag is forced); objects over 1 KiB are refused with a reason.
const criticalPolicy = `package weir

default allow := false

allow if {
	owner_or_root
	not too_big
}

owner_or_root if input.principal.root
owner_or_root if input.bucket.owner == input.principal.access_key
owner_or_root if input.action == "s3:CreateBucket"

too_big if {
	input.action == "s3:PutObject"
	input.request.size > 1024
}

strategy := "etag" if input.bucket.tags.critical == "true"

reason := "objects are limited to 1 KiB here" if too_big
`

func TestPolicyDecides(t *testing.T) {
	log := &syncBuffer{}
	ts := startServer(t, serverOptions{Policy: map[string]string{"critical.rego": criticalPolicy}, Log: log})
	c := ts.root()
	ctx := context.Background()
	mustCreateBucket(t, c, "ledger")
	mustPut(t, c, "ledger", "k", []byte("before tagging"))
	if _, err := c.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String("ledger"),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("critical"), Value: aws.String("true")}}}}); err != nil {
		t.Fatal(err)
	}
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("ledger"), Key: aws.String("k"), Body: bytes.NewReader([]byte("v2"))})
	// The policy chose etag, not the bucket: the message says the write's strategy.
	if httpStatus(err) != http.StatusPreconditionRequired || apiCode(err) != "PreconditionRequired" ||
		apiMessage(err) != "This write must be conditional: its concurrency strategy is etag, so it must state which version it replaces, or that the key must not exist (docs/concurrency.md)." {
		t.Fatalf("unconditional write on a critical bucket: %v", err)
	}
	out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("ledger"), Key: aws.String("new"), Body: bytes.NewReader([]byte("v")), IfNoneMatch: aws.String("*")})
	if err != nil {
		t.Fatal(err)
	}
	if h := rawHeaders(out.ResultMetadata); h.Get("x-weir-concurrency") != "etag" || h.Get("x-weir-decided-by") != "policy" {
		t.Fatalf("write headers: %v", h)
	}
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("ledger"), Key: aws.String("big"), Body: bytes.NewReader(make([]byte, 2048)), IfNoneMatch: aws.String("*")})
	if httpStatus(err) != http.StatusForbidden || apiCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "objects are limited to 1 KiB here") {
		t.Fatalf("oversized write: %v", err)
	}
	// One decision log line per decision, and counters by source and outcome.
	if l := log.String(); !strings.Contains(l, `msg=decision`) || !strings.Contains(l, `action=s3:PutObject operation=PutObject bucket=ledger key=big principal=root outcome=deny decider=policy status=403`) ||
		!strings.Contains(l, `reason="objects are limited to 1 KiB here"`) {
		t.Fatalf("decision log:\n%s", l)
	}
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics := string(readAll(t, resp.Body))
	for _, want := range []string{`weir_decisions_total{outcome="deny",source="policy"} 1`, `weir_decisions_total{outcome="allow",source="policy"}`, "weir_decision_duration_seconds_count"} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("/metrics lacks %s", want)
		}
	}
	// Another user is still kept out of a bucket they do not own.
	_, err = ts.client3(bobAK, bobSK).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("ledger"), Key: aws.String("new")})
	if apiCode(err) != "AccessDenied" {
		t.Fatalf("bob reads root's bucket: %v", err)
	}
}

// TestPolicyFaultFailsRequest: a policy that throws at evaluation time fails that request with
// 500 InternalError, and the gateway keeps serving.
func TestPolicyFaultFailsRequest(t *testing.T) {
	conflict := `package weir
allow := true
strategy := "etag" if input.action
strategy := "lease" if input.action
`
	ts := startServer(t, serverOptions{Policy: map[string]string{"bad.rego": conflict}})
	for i := 0; i < 3; i++ {
		expectError(t, ts, ts.signed(t, http.MethodPut, "/any-bucket", nil, nil, "", time.Now()), 500, "InternalError")
	}
	if resp, err := http.Get(ts.URL + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("gateway down after policy faults: %v", err)
	}
}

// TestExclusiveReads: a policy's read_requires_lease makes GET and HEAD need the active lease.
func TestExclusiveReads(t *testing.T) {
	ts := startServer(t, serverOptions{Policy: map[string]string{"exclusive.rego": `package weir
allow := true
read_requires_lease if input.bucket.tags.exclusive == "true"
`}})
	c := ts.root()
	ctx := context.Background()
	mustCreateBucket(t, c, "vault")
	mustPut(t, c, "vault", "secret", []byte("s"))
	if _, err := c.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String("vault"),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("exclusive"), Value: aws.String("true")}}}}); err != nil {
		t.Fatal(err)
	}
	expectError(t, ts, ts.signed(t, http.MethodGet, "/vault/secret", nil, nil, "", time.Now()), 412, "LeaseNotPresentWithBlobOperation")
	resp, _ := ts.lease(t, "/vault/secret", map[string]string{"x-weir-lease-action": "acquire", "x-weir-lease-duration": "-1"})
	id := resp.Header.Get("x-weir-lease-id")
	expectError(t, ts, ts.signed(t, http.MethodGet, "/vault/secret", nil, nil, "", time.Now()), 412, "LeaseIdMissing")
	resp, _, body := ts.do(t, ts.signed(t, http.MethodGet, "/vault/secret", nil, map[string]string{"x-weir-lease-id": id}, "", time.Now()))
	if resp.StatusCode != 200 || string(body) != "s" {
		t.Fatalf("read with the lease: %d %q", resp.StatusCode, body)
	}
}

// TestPolicySeesObject: a policy that reads input.object sees the current version, on writes
// (a create-only rule for one user) and on reads (the very version GET is about to return).
func TestPolicySeesObject(t *testing.T) {
	ts := startServer(t, serverOptions{Policy: map[string]string{"object.rego": `package weir
default allow := false
allow if input.principal.root
allow if input.action == "s3:CreateBucket"
allow if {
	input.action == "s3:PutObject"
	not input.object.exists
}
allow if {
	input.action == "s3:GetObject"
	input.object.exists
	input.object.size <= 4
}
reason := sprintf("%s exists: bob may only create", [input.object.key]) if {
	input.action == "s3:PutObject"
	input.object.exists
}
reason := sprintf("%s is %d bytes: bob reads up to 4", [input.object.key, input.object.size]) if {
	input.action == "s3:GetObject"
	input.object.exists
}
`}})
	root, bob := ts.root(), ts.client3(bobAK, bobSK)
	ctx := context.Background()
	mustCreateBucket(t, root, "shared")
	mustPut(t, bob, "shared", "new", []byte("abc"))
	_, err := bob.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("shared"), Key: aws.String("new"), Body: strings.NewReader("again")})
	expectDenied(t, err, "new exists: bob may only create")
	got, err := bob.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("shared"), Key: aws.String("new")})
	if err != nil {
		t.Fatal(err)
	}
	got.Body.Close()
	mustPut(t, root, "shared", "big", []byte("0123456789"))
	_, err = bob.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("shared"), Key: aws.String("big")})
	expectDenied(t, err, "big is 10 bytes: bob reads up to 4")
	// A denial wins over NoSuchKey: bob learns nothing about which keys exist.
	_, err = bob.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("shared"), Key: aws.String("absent")})
	if apiCode(err) != "AccessDenied" {
		t.Fatalf("GET of a missing key bob may not read: %v", err)
	}
}

// TestPolicyInputBounded: what reaches Rego is bounded before the decision step runs. The input
// holds no request body and nothing nested from the client: headers are capped by the server
// (64 KiB in all), bucket tags by the tagging API (50), and a request beyond either is refused
// without a decision.
func TestPolicyInputBounded(t *testing.T) {
	ts := startServer(t, serverOptions{Policy: map[string]string{"any.rego": "package weir\nallow := true\n"}})
	c := ts.root()
	mustCreateBucket(t, c, "bounded")
	decisions := func() int {
		resp, err := http.Get(ts.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		n := -1
		for _, l := range strings.Split(string(readAll(t, resp.Body)), "\n") {
			if v, ok := strings.CutPrefix(l, "weir_decision_duration_seconds_count "); ok {
				fmt.Sscan(v, &n)
			}
		}
		return n
	}
	before := decisions()
	req := ts.signed(t, http.MethodPut, "/bounded/k", []byte("x"), map[string]string{"x-amz-meta-big": strings.Repeat("a", 200<<10)}, "", time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("a 200 KiB header: status %d %s", resp.StatusCode, b)
	}
	if after := decisions(); before < 1 || after != before {
		t.Fatalf("decisions before %d, after %d: the oversized request reached the decision step", before, after)
	}
	tags := make([]types.Tag, 51)
	for i := range tags {
		tags[i] = types.Tag{Key: aws.String(fmt.Sprintf("k%d", i)), Value: aws.String("v")}
	}
	_, err = c.PutBucketTagging(context.Background(), &s3.PutBucketTaggingInput{Bucket: aws.String("bounded"), Tagging: &types.Tagging{TagSet: tags}})
	if apiCode(err) != "InvalidTag" {
		t.Fatalf("51 bucket tags: %v", err)
	}
}

// A policy that rules by key: protected/ is never deleted, *.json needs a condition.
const keyRulesPolicy = `package weir

default allow := false

allow if {
	owner_or_root
	not protected_delete
}

owner_or_root if input.principal.root
owner_or_root if input.bucket.owner == input.principal.access_key

protected_delete if {
	input.action == "s3:DeleteObject"
	startswith(input.object.key, "protected/")
}

strategy := "etag" if endswith(input.object.key, ".json")

reason := "protected/ is never deleted" if protected_delete
`

// TestDeleteObjectsDecidedPerKey: a bulk delete gets the same decision per key as DeleteObject,
// so rules by key cannot be bypassed by deleting in bulk.
func TestDeleteObjectsDecidedPerKey(t *testing.T) {
	ts := startServer(t, serverOptions{Policy: map[string]string{"keys.rego": keyRulesPolicy}})
	c := ts.root()
	ctx := context.Background()
	mustCreateBucket(t, c, "keyrules")
	for _, k := range []string{"protected/a", "plain"} {
		mustPut(t, c, "keyrules", k, []byte("v"))
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("keyrules"), Key: aws.String("x.json"), Body: strings.NewReader("{}"), IfNoneMatch: aws.String("*")}); err != nil {
		t.Fatal(err)
	}
	_, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("keyrules"), Key: aws.String("protected/a")})
	expectDenied(t, err, "protected/ is never deleted")
	out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("keyrules"), Delete: &types.Delete{Objects: []types.ObjectIdentifier{
		{Key: aws.String("protected/a")}, {Key: aws.String("x.json")}, {Key: aws.String("plain")}}}})
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]string{}
	for _, e := range out.Errors {
		codes[aws.ToString(e.Key)] = aws.ToString(e.Code)
	}
	if len(out.Deleted) != 1 || aws.ToString(out.Deleted[0].Key) != "plain" || codes["protected/a"] != "AccessDenied" || codes["x.json"] != "PreconditionRequired" {
		t.Fatalf("DeleteObjects: deleted %d (%v), errors %v", len(out.Deleted), out.Deleted, codes)
	}
	for _, k := range []string{"protected/a", "x.json"} {
		if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("keyrules"), Key: aws.String(k)}); err != nil {
			t.Fatalf("%s was deleted in bulk despite the policy: %v", k, err)
		}
	}
	head, _ := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("keyrules"), Key: aws.String("x.json")})
	out, err = c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("keyrules"), Delete: &types.Delete{Objects: []types.ObjectIdentifier{
		{Key: aws.String("x.json"), ETag: head.ETag}}}})
	if err != nil || len(out.Deleted) != 1 || len(out.Errors) != 0 {
		t.Fatalf("DeleteObjects of x.json with its ETag: %+v %v", out, err)
	}
}

// TestListBucketsDecided: ListBuckets goes through the policy like every request; a policy that
// lets only root in refuses it to everyone else.
func TestListBucketsDecided(t *testing.T) {
	ts := startServer(t, serverOptions{Policy: map[string]string{"root.rego": "package weir\n\ndefault allow := false\n\nallow if input.principal.root\n\nreason := \"root only\" if not allow\n"}})
	if _, err := ts.root().ListBuckets(context.Background(), &s3.ListBucketsInput{}); err != nil {
		t.Fatal(err)
	}
	_, err := ts.client3(userAK, userSK).ListBuckets(context.Background(), &s3.ListBucketsInput{})
	expectDenied(t, err, "root only")
}

// TestDecisionLogOutcomes: the decision log tells an allow, a deny and a policy error apart,
// says who decided, and carries the status the client got.
func TestDecisionLogOutcomes(t *testing.T) {
	const policy = `package weir
allow if input.request.size <= 1024
reason := "objects are limited to 1 KiB here" if input.request.size > 1024
strategy := "etag" if input.bucket.name == "broken"
strategy := "lease" if input.bucket.name == "broken"
`
	log := &syncBuffer{}
	ts := startServer(t, serverOptions{Policy: map[string]string{"p.rego": policy}, Log: log})
	c := ts.root()
	ctx := context.Background()
	mustCreateBucket(t, c, "fine")
	mustPut(t, c, "fine", "small", []byte("ok"))
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("fine"), Key: aws.String("big"), Body: bytes.NewReader(make([]byte, 2048))})
	if httpStatus(err) != http.StatusForbidden {
		t.Fatalf("big write: %v", err)
	}
	mustCreateBucket(t, c, "broken")
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("broken"), Key: aws.String("k"), Body: strings.NewReader("x")})
	if httpStatus(err) != http.StatusInternalServerError {
		t.Fatalf("write under a conflicting policy: %v", err)
	}
	l := log.String()
	for _, want := range []string{
		`key=small principal=root outcome=allow decider=policy status=200 strategy=last-writer-wins decided_by=bucket reason=""`,
		`key=big principal=root outcome=deny decider=policy status=403 strategy="" decided_by=policy reason="objects are limited to 1 KiB here"`,
		`bucket=broken key=k principal=root outcome=error decider=policy status=500`,
	} {
		if !strings.Contains(l, want) {
			t.Errorf("the decision log lacks %s:\n%s", want, l)
		}
	}
	if !strings.Contains(l, "policy_time=") || !strings.Contains(l, "plugin_time=") {
		t.Errorf("the decision log does not time the policy and the plugins apart:\n%s", l)
	}
}

// TestPolicyReloadMetrics: /metrics counts reloads and rejected reloads and names the revision
// serving, so an operator sees whether an edit took.
func TestPolicyReloadMetrics(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write := func(src string) {
		if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("package weir\nallow := true\n")
	d, err := policies.LoadDir(ctx, dir, policies.SourceOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, serverOptions{PolicySource: d})
	check := func(when string, reloads, rejected float64) {
		t.Helper()
		rev := d.Stats().Revision
		if got := ts.metric(t, `weir_policy_info{revision="`+rev+`"}`); got != 1 {
			t.Errorf("%s: weir_policy_info for revision %s = %v", when, rev, got)
		}
		if got := ts.metric(t, "weir_policy_reloads_total"); got != reloads {
			t.Errorf("%s: weir_policy_reloads_total = %v, want %v", when, got, reloads)
		}
		if got := ts.metric(t, "weir_policy_reloads_rejected_total"); got != rejected {
			t.Errorf("%s: weir_policy_reloads_rejected_total = %v, want %v", when, got, rejected)
		}
	}
	check("at start", 0, 0)
	first := d.Stats().Revision
	write("package weir\nallow := true\nstrategy := \"etag\"\n")
	if changed, err := d.Reload(ctx); !changed || err != nil {
		t.Fatalf("a good change: %v %v", changed, err)
	}
	check("after a good reload", 1, 0)
	if d.Stats().Revision == first {
		t.Error("the revision did not change with the policy")
	}
	write("package weir\nallow if {\n")
	if _, err := d.Reload(ctx); err == nil {
		t.Fatal("a policy that does not parse was accepted")
	}
	check("after a rejected reload", 1, 1)
}
