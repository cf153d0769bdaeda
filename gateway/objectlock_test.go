package gateway_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
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
