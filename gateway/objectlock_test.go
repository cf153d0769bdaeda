package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func TestObjectLockConfiguration(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.root()
	ctx := context.Background()

	// A bucket created with Object Lock: versioning enabled, the configuration readable.
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("locked"), ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	lb := aws.String("locked")
	v, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: lb})
	if err != nil || v.Status != types.BucketVersioningStatusEnabled {
		t.Fatalf("versioning of a bucket created with Object Lock: %+v %v", v, err)
	}
	got, err := c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: lb})
	if err != nil || got.ObjectLockConfiguration == nil || got.ObjectLockConfiguration.ObjectLockEnabled != types.ObjectLockEnabledEnabled || got.ObjectLockConfiguration.Rule != nil {
		t.Fatalf("GetObjectLockConfiguration of a new locked bucket: %+v %v", got.ObjectLockConfiguration, err)
	}
	_, err = c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: lb, VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusSuspended}})
	if apiCode(err) != "InvalidBucketState" || httpStatus(err) != http.StatusConflict {
		t.Fatalf("suspending versioning on a bucket with Object Lock: %v, want 409 InvalidBucketState", err)
	}

	// A default retention, set and read back; then replaced by one in years.
	put := func(bucket string, cfg *types.ObjectLockConfiguration) error {
		_, err := c.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{Bucket: aws.String(bucket), ObjectLockConfiguration: cfg})
		return err
	}
	rule := func(mode types.ObjectLockRetentionMode, days, years int32) *types.ObjectLockConfiguration {
		r := &types.DefaultRetention{Mode: mode}
		if days != 0 {
			r.Days = aws.Int32(days)
		}
		if years != 0 {
			r.Years = aws.Int32(years)
		}
		return &types.ObjectLockConfiguration{ObjectLockEnabled: types.ObjectLockEnabledEnabled, Rule: &types.ObjectLockRule{DefaultRetention: r}}
	}
	if err := put("locked", rule(types.ObjectLockRetentionModeGovernance, 30, 0)); err != nil {
		t.Fatal(err)
	}
	got, err = c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: lb})
	if err != nil || got.ObjectLockConfiguration.Rule == nil {
		t.Fatalf("GetObjectLockConfiguration: %+v %v", got, err)
	}
	if r := got.ObjectLockConfiguration.Rule.DefaultRetention; r.Mode != types.ObjectLockRetentionModeGovernance || aws.ToInt32(r.Days) != 30 || r.Years != nil {
		t.Fatalf("default retention read back: %s %v days %v years", r.Mode, aws.ToInt32(r.Days), r.Years)
	}
	if err := put("locked", rule(types.ObjectLockRetentionModeCompliance, 0, 2)); err != nil {
		t.Fatal(err)
	}
	got, _ = c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: lb})
	if r := got.ObjectLockConfiguration.Rule.DefaultRetention; r.Mode != types.ObjectLockRetentionModeCompliance || aws.ToInt32(r.Years) != 2 || r.Days != nil {
		t.Fatalf("default retention in years read back: %s %v days %v years", r.Mode, r.Days, aws.ToInt32(r.Years))
	}

	// Refused configurations change nothing.
	for _, bad := range []struct {
		name string
		cfg  *types.ObjectLockConfiguration
		code string
	}{
		{"days and years", rule(types.ObjectLockRetentionModeGovernance, 1, 1), "MalformedXML"},
		{"no period", rule(types.ObjectLockRetentionModeGovernance, 0, 0), "MalformedXML"},
		{"zero days", &types.ObjectLockConfiguration{ObjectLockEnabled: types.ObjectLockEnabledEnabled, Rule: &types.ObjectLockRule{DefaultRetention: &types.DefaultRetention{Mode: types.ObjectLockRetentionModeGovernance, Days: aws.Int32(0)}}}, "InvalidArgument"},
		{"an unknown mode", rule("FOREVER", 1, 0), "InvalidArgument"},
		{"not enabled", &types.ObjectLockConfiguration{}, "MalformedXML"},
	} {
		if err := put("locked", bad.cfg); apiCode(err) != bad.code || httpStatus(err) != http.StatusBadRequest {
			t.Errorf("PutObjectLockConfiguration with %s: %v, want 400 %s", bad.name, err, bad.code)
		}
	}
	got, _ = c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: lb})
	if r := got.ObjectLockConfiguration.Rule.DefaultRetention; r.Mode != types.ObjectLockRetentionModeCompliance || aws.ToInt32(r.Years) != 2 {
		t.Fatalf("a refused configuration changed the bucket's: %s %v years", r.Mode, aws.ToInt32(r.Years))
	}

	// An existing bucket: Object Lock only once its versioning is enabled, then for good.
	mustCreateBucket(t, c, "plain")
	if _, err := c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String("plain")}); apiCode(err) != "ObjectLockConfigurationNotFoundError" {
		t.Fatalf("GetObjectLockConfiguration of a bucket without Object Lock: %v", err)
	}
	enabled := &types.ObjectLockConfiguration{ObjectLockEnabled: types.ObjectLockEnabledEnabled}
	if err := put("plain", enabled); apiCode(err) != "InvalidBucketState" || httpStatus(err) != http.StatusConflict {
		t.Fatalf("Object Lock on a bucket without versioning: %v, want 409 InvalidBucketState", err)
	}
	enableVersioning(t, c, "plain", types.BucketVersioningStatusEnabled)
	if err := put("plain", enabled); err != nil {
		t.Fatalf("Object Lock on a bucket with versioning enabled: %v", err)
	}
	if _, err := c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String("plain")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("plain"), VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusSuspended}})
	if apiCode(err) != "InvalidBucketState" {
		t.Fatalf("suspending versioning after Object Lock was enabled: %v", err)
	}

	// A lock token is refused rather than ignored; a malformed header on CreateBucket too.
	resp, body, _ := ts.do(t, ts.signed(t, http.MethodPut, "/plain?object-lock", []byte(`<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>`),
		map[string]string{"x-amz-bucket-object-lock-token": "tok"}, "", time.Now()))
	if resp.StatusCode != http.StatusNotImplemented || body.Code != "NotImplemented" {
		t.Fatalf("an Object Lock token: %d %s", resp.StatusCode, body.Code)
	}
	resp, body, _ = ts.do(t, ts.signed(t, http.MethodPut, "/maybe", nil, map[string]string{"x-amz-bucket-object-lock-enabled": "yes"}, "", time.Now()))
	if resp.StatusCode != http.StatusBadRequest || body.Code != "InvalidArgument" {
		t.Fatalf("x-amz-bucket-object-lock-enabled: yes: %d %s", resp.StatusCode, body.Code)
	}
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("maybe")}); err == nil {
		t.Fatal("a refused CreateBucket created the bucket")
	}
	// Object Lock keeps versions, not the bucket: an empty locked bucket can be deleted.
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: lb}); err != nil {
		t.Fatalf("deleting an empty bucket with Object Lock: %v", err)
	}
}

// bypassPolicy lets owners do anything on their buckets but bypass a GOVERNANCE retention,
// which only root may.
const bypassPolicy = `package weir
default allow := false
allow if input.principal.root
allow if {
	input.bucket.owner == input.principal.access_key
	input.action != "s3:BypassGovernanceRetention"
}
allow if input.action in {"s3:CreateBucket", "s3:ListAllMyBuckets"}
reason := "only root bypasses a governance retention" if input.action == "s3:BypassGovernanceRetention"
reason := "not yours" if { not allow; input.action != "s3:BypassGovernanceRetention" }
`

// TestObjectLockRetention covers per-version retention and legal hold through the real server:
// the headers on writes and reads, the retention and legal-hold calls, deletes of locked
// versions refused with AccessDenied, and the bypass of a GOVERNANCE retention allowed only
// where the policy allows s3:BypassGovernanceRetention.
func TestObjectLockRetention(t *testing.T) {
	ts := startServer(t, serverOptions{Policy: map[string]string{"bypass.rego": bypassPolicy}, MinPartSize: 5})
	root, alice := ts.root(), ts.client3(userAK, userSK)
	ctx := context.Background()
	if _, err := alice.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("vault"), ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	mustCreateBucket(t, alice, "open")
	vb := aws.String("vault")
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)

	// Lock headers on a bucket without Object Lock: 400 InvalidRequest, nothing stored.
	_, err := alice.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("open"), Key: aws.String("k"), Body: strings.NewReader("x"),
		ObjectLockMode: types.ObjectLockModeGovernance, ObjectLockRetainUntilDate: aws.Time(until)})
	if apiCode(err) != "InvalidRequest" || httpStatus(err) != http.StatusBadRequest {
		t.Fatalf("a retention on a bucket without Object Lock: %v", err)
	}
	surfaceExpectAbsent(t, alice, "open", "k")
	_, err = alice.PutObject(ctx, &s3.PutObjectInput{Bucket: vb, Key: aws.String("half"), Body: strings.NewReader("x"), ObjectLockMode: types.ObjectLockModeGovernance})
	if apiCode(err) != "InvalidArgument" {
		t.Fatalf("a mode without a date: %v", err)
	}
	mustPut(t, alice, "open", "k", []byte("x"))
	_, err = alice.PutObjectRetention(ctx, &s3.PutObjectRetentionInput{Bucket: aws.String("open"), Key: aws.String("k"),
		Retention: &types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeGovernance, RetainUntilDate: aws.Time(until)}})
	if apiCode(err) != "InvalidRequest" {
		t.Fatalf("PutObjectRetention on a bucket without Object Lock: %v", err)
	}

	// COMPLIANCE from the PUT's headers: shown on HEAD and GetObjectRetention; the version cannot
	// be deleted, even by root with bypass; the retention can only be extended.
	comp, err := alice.PutObject(ctx, &s3.PutObjectInput{Bucket: vb, Key: aws.String("comp"), Body: strings.NewReader("kept"),
		ObjectLockMode: types.ObjectLockModeCompliance, ObjectLockRetainUntilDate: aws.Time(until)})
	if err != nil {
		t.Fatal(err)
	}
	head, err := alice.HeadObject(ctx, &s3.HeadObjectInput{Bucket: vb, Key: aws.String("comp")})
	if err != nil || head.ObjectLockMode != types.ObjectLockModeCompliance || !aws.ToTime(head.ObjectLockRetainUntilDate).Equal(until) {
		t.Fatalf("HEAD of a COMPLIANCE version: %s %v %v", head.ObjectLockMode, head.ObjectLockRetainUntilDate, err)
	}
	ret, err := alice.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{Bucket: vb, Key: aws.String("comp"), VersionId: comp.VersionId})
	if err != nil || ret.Retention.Mode != types.ObjectLockRetentionModeCompliance || !aws.ToTime(ret.Retention.RetainUntilDate).Equal(until) {
		t.Fatalf("GetObjectRetention: %+v %v", ret, err)
	}
	for _, c := range []*s3.Client{alice, root} {
		_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: vb, Key: aws.String("comp"), VersionId: comp.VersionId, BypassGovernanceRetention: aws.Bool(true)})
		if apiCode(err) != "AccessDenied" || httpStatus(err) != http.StatusForbidden {
			t.Fatalf("deleting a COMPLIANCE version: %v, want 403 AccessDenied", err)
		}
	}
	_, err = root.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: vb, Key: aws.String("comp"), VersionId: comp.VersionId})
	if apiCode(err) != "AccessDenied" || !strings.Contains(apiMessage(err), "object lock") {
		t.Fatalf("root deleting a COMPLIANCE version: %v", err)
	}
	_, err = root.PutObjectRetention(ctx, &s3.PutObjectRetentionInput{Bucket: vb, Key: aws.String("comp"), VersionId: comp.VersionId,
		Retention: &types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeCompliance, RetainUntilDate: aws.Time(until.Add(-time.Minute))}, BypassGovernanceRetention: aws.Bool(true)})
	if apiCode(err) != "AccessDenied" {
		t.Fatalf("shortening a COMPLIANCE retention: %v, want AccessDenied", err)
	}
	if _, err := alice.PutObjectRetention(ctx, &s3.PutObjectRetentionInput{Bucket: vb, Key: aws.String("comp"), VersionId: comp.VersionId,
		Retention: &types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeCompliance, RetainUntilDate: aws.Time(until.Add(time.Hour))}}); err != nil {
		t.Fatalf("extending a COMPLIANCE retention: %v", err)
	}
	// A delete without a version id writes a delete marker; the locked version stays readable.
	del, err := alice.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: vb, Key: aws.String("comp")})
	if err != nil || !aws.ToBool(del.DeleteMarker) {
		t.Fatalf("DELETE without a version id on a locked key: %+v %v", del, err)
	}
	if data, _, err := getVersion(t, alice, "vault", "comp", aws.ToString(comp.VersionId)); err != nil || string(data) != "kept" {
		t.Fatalf("the locked version after a delete marker: %q %v", data, err)
	}
	// DeleteObjects by version id answers the locked version with AccessDenied in its result.
	res, err := root.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: vb, Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("comp"), VersionId: comp.VersionId}}}})
	if err != nil || len(res.Errors) != 1 || aws.ToString(res.Errors[0].Code) != "AccessDenied" {
		t.Fatalf("DeleteObjects of a locked version: %+v %v", res, err)
	}

	// GOVERNANCE: bypass is allowed to root only, by the policy.
	gov, err := alice.PutObject(ctx, &s3.PutObjectInput{Bucket: vb, Key: aws.String("gov"), Body: strings.NewReader("g"),
		ObjectLockMode: types.ObjectLockModeGovernance, ObjectLockRetainUntilDate: aws.Time(until)})
	if err != nil {
		t.Fatal(err)
	}
	delGov := func(c *s3.Client, bypass bool) error {
		_, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: vb, Key: aws.String("gov"), VersionId: gov.VersionId, BypassGovernanceRetention: aws.Bool(bypass)})
		return err
	}
	if err := delGov(alice, false); apiCode(err) != "AccessDenied" {
		t.Fatalf("deleting a GOVERNANCE version without bypass: %v", err)
	}
	expectDenied(t, delGov(alice, true), "only root bypasses a governance retention")
	_, err = alice.PutObjectRetention(ctx, &s3.PutObjectRetentionInput{Bucket: vb, Key: aws.String("gov"), Retention: &types.ObjectLockRetention{}, BypassGovernanceRetention: aws.Bool(true)})
	expectDenied(t, err, "only root bypasses a governance retention")
	if _, _, err := getVersion(t, alice, "vault", "gov", aws.ToString(gov.VersionId)); err != nil {
		t.Fatalf("a refused delete removed the GOVERNANCE version: %v", err)
	}
	if err := delGov(root, true); err != nil {
		t.Fatalf("root deleting a GOVERNANCE version with bypass: %v", err)
	}

	// Legal hold: set on a version, shown, refusing deletes until lifted.
	held := aws.ToString(mustPut(t, alice, "vault", "held", []byte("h")).VersionId)
	if _, err := alice.PutObjectLegalHold(ctx, &s3.PutObjectLegalHoldInput{Bucket: vb, Key: aws.String("held"), VersionId: aws.String(held),
		LegalHold: &types.ObjectLockLegalHold{Status: types.ObjectLockLegalHoldStatusOn}}); err != nil {
		t.Fatal(err)
	}
	lh, err := alice.GetObjectLegalHold(ctx, &s3.GetObjectLegalHoldInput{Bucket: vb, Key: aws.String("held")})
	if err != nil || lh.LegalHold.Status != types.ObjectLockLegalHoldStatusOn {
		t.Fatalf("GetObjectLegalHold: %+v %v", lh, err)
	}
	got, err := alice.GetObject(ctx, &s3.GetObjectInput{Bucket: vb, Key: aws.String("held")})
	if err != nil || got.ObjectLockLegalHoldStatus != types.ObjectLockLegalHoldStatusOn {
		t.Fatalf("GET of a version under legal hold: %v %v", got, err)
	}
	got.Body.Close()
	_, err = root.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: vb, Key: aws.String("held"), VersionId: aws.String(held), BypassGovernanceRetention: aws.Bool(true)})
	if apiCode(err) != "AccessDenied" {
		t.Fatalf("deleting a version under legal hold: %v", err)
	}
	if _, err := alice.PutObjectLegalHold(ctx, &s3.PutObjectLegalHoldInput{Bucket: vb, Key: aws.String("held"), VersionId: aws.String(held),
		LegalHold: &types.ObjectLockLegalHold{Status: types.ObjectLockLegalHoldStatusOff}}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: vb, Key: aws.String("held"), VersionId: aws.String(held)}); err != nil {
		t.Fatalf("deleting a version once its legal hold is lifted: %v", err)
	}

	// The bucket's default retention locks a new version; CreateMultipartUpload and CopyObject
	// take the headers; a part may not.
	if _, err := alice.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{Bucket: vb, ObjectLockConfiguration: &types.ObjectLockConfiguration{
		ObjectLockEnabled: types.ObjectLockEnabledEnabled, Rule: &types.ObjectLockRule{DefaultRetention: &types.DefaultRetention{Mode: types.ObjectLockRetentionModeGovernance, Days: aws.Int32(1)}}}}); err != nil {
		t.Fatal(err)
	}
	def := aws.ToString(mustPut(t, alice, "vault", "def", []byte("d")).VersionId)
	ret, err = alice.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{Bucket: vb, Key: aws.String("def"), VersionId: aws.String(def)})
	if err != nil || ret.Retention.Mode != types.ObjectLockRetentionModeGovernance || aws.ToTime(ret.Retention.RetainUntilDate).Before(time.Now().Add(23*time.Hour)) {
		t.Fatalf("default retention of a new version: %+v %v", ret, err)
	}
	up, err := alice.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: vb, Key: aws.String("mp"), ObjectLockLegalHoldStatus: types.ObjectLockLegalHoldStatusOn})
	if err != nil {
		t.Fatal(err)
	}
	_, err = alice.UploadPart(ctx, &s3.UploadPartInput{Bucket: vb, Key: aws.String("mp"), UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("part!")},
		s3.WithAPIOptions(smithyhttp.AddHeaderValue("x-amz-object-lock-legal-hold", "OFF")))
	if apiCode(err) != "InvalidRequest" {
		t.Fatalf("a part with a lock header: %v", err)
	}
	part, err := alice.UploadPart(ctx, &s3.UploadPartInput{Bucket: vb, Key: aws.String("mp"), UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("part!")})
	if err != nil {
		t.Fatal(err)
	}
	done, err := alice.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: vb, Key: aws.String("mp"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: part.ETag}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: vb, Key: aws.String("mp"), VersionId: done.VersionId, BypassGovernanceRetention: aws.Bool(true)}); apiCode(err) != "AccessDenied" {
		t.Fatalf("deleting a completed upload under legal hold: %v", err)
	}
	cp, err := alice.CopyObject(ctx, &s3.CopyObjectInput{Bucket: vb, Key: aws.String("copy"), CopySource: aws.String("vault/mp"),
		ObjectLockMode: types.ObjectLockModeCompliance, ObjectLockRetainUntilDate: aws.Time(until)})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := alice.HeadObject(ctx, &s3.HeadObjectInput{Bucket: vb, Key: aws.String("copy"), VersionId: cp.VersionId})
	if err != nil || ch.ObjectLockMode != types.ObjectLockModeCompliance || ch.ObjectLockLegalHoldStatus == types.ObjectLockLegalHoldStatusOn {
		t.Fatalf("a copy takes the lock it asks for, not its source's: %s hold %s, %v", ch.ObjectLockMode, ch.ObjectLockLegalHoldStatus, err)
	}
}
