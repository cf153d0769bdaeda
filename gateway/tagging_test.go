package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func tagMap(ts []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range ts {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func getTags(t *testing.T, c *s3.Client, bucket, key string) map[string]string {
	t.Helper()
	out, err := c.GetObjectTagging(context.Background(), &s3.GetObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GetObjectTagging %s: %v", key, err)
	}
	return tagMap(out.TagSet)
}

// Object tags are stored and returned, never dropped: on PutObject (x-amz-tagging), multipart,
// CopyObject (COPY and REPLACE), the tagging API, x-amz-tagging-count on GET and HEAD, with
// S3's limits and error codes.
func TestObjectTagging(t *testing.T) {
	ts := startServer(t, serverOptions{MinPartSize: 5})
	c := ts.root()
	ctx := context.Background()
	mustCreateBucket(t, c, "tags")
	b := aws.String("tags")

	put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("k"), Body: strings.NewReader("hello"), Tagging: aws.String("k1=v1&team=a%20b%2Bc")})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := getTags(t, c, "tags", "k"), map[string]string{"k1": "v1", "team": "a b+c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("tags after PutObject: %v, want %v", got, want)
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("k")})
	if err != nil || aws.ToInt32(head.TagCount) != 2 {
		t.Fatalf("HeadObject tag count: %v %v, want 2", head.TagCount, err)
	}
	get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("k")})
	if err != nil || aws.ToInt32(get.TagCount) != 2 {
		t.Fatalf("GetObject tag count: %v %v, want 2", get.TagCount, err)
	}
	readAll(t, get.Body)

	// PutObjectTagging replaces the set and leaves the object's version alone.
	if _, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: b, Key: aws.String("k"), Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("only"), Value: aws.String("")}}}}); err != nil {
		t.Fatal(err)
	}
	if got := getTags(t, c, "tags", "k"); !reflect.DeepEqual(got, map[string]string{"only": ""}) {
		t.Fatalf("tags after PutObjectTagging: %v", got)
	}
	head2, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("k")})
	if err != nil || aws.ToString(head2.ETag) != aws.ToString(put.ETag) || !head2.LastModified.Equal(*head.LastModified) || aws.ToInt32(head2.TagCount) != 1 {
		t.Fatalf("after PutObjectTagging: %+v %v; the ETag and Last-Modified must stay", head2, err)
	}
	if _, err := c.DeleteObjectTagging(ctx, &s3.DeleteObjectTaggingInput{Bucket: b, Key: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	if got := getTags(t, c, "tags", "k"); len(got) != 0 {
		t.Fatalf("tags after DeleteObjectTagging: %v", got)
	}
	head3, _ := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("k")})
	if head3.TagCount != nil {
		t.Fatalf("x-amz-tagging-count after delete: %d", *head3.TagCount)
	}

	// CopyObject copies the source's tags, or replaces them with x-amz-tagging-directive.
	if _, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: b, Key: aws.String("k"), Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("src"), Value: aws.String("1")}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("copy"), CopySource: aws.String("tags/k")}); err != nil {
		t.Fatal(err)
	}
	if got := getTags(t, c, "tags", "copy"); !reflect.DeepEqual(got, map[string]string{"src": "1"}) {
		t.Fatalf("tags of a COPY: %v", got)
	}
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("copy2"), CopySource: aws.String("tags/k"),
		TaggingDirective: types.TaggingDirectiveReplace, Tagging: aws.String("new=2")}); err != nil {
		t.Fatal(err)
	}
	if got := getTags(t, c, "tags", "copy2"); !reflect.DeepEqual(got, map[string]string{"new": "2"}) {
		t.Fatalf("tags of a REPLACE: %v", got)
	}
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("copy3"), CopySource: aws.String("tags/k"), Tagging: aws.String("dropped=1")})
	if apiCode(err) != "InvalidArgument" {
		t.Fatalf("x-amz-tagging on a COPY: %v, want InvalidArgument (it would be dropped)", err)
	}

	// Multipart: the tags of CreateMultipartUpload are the object's.
	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("mp"), Tagging: aws.String("mp=yes")})
	if err != nil {
		t.Fatal(err)
	}
	up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("mp"), UploadId: cr.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("part one")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String("mp"), UploadId: cr.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: up.ETag}}}}); err != nil {
		t.Fatal(err)
	}
	if got := getTags(t, c, "tags", "mp"); !reflect.DeepEqual(got, map[string]string{"mp": "yes"}) {
		t.Fatalf("tags of a multipart object: %v", got)
	}

	// S3's limits, and nothing stored when refused.
	many := make([]types.Tag, 11)
	for i := range many {
		many[i] = types.Tag{Key: aws.String(fmt.Sprint("k", i)), Value: aws.String("v")}
	}
	bad := []struct {
		what   string
		tags   []types.Tag
		code   string
		status int
	}{
		{"11 tags", many, "BadRequest", 400},
		{"key of 129", []types.Tag{{Key: aws.String(strings.Repeat("k", 129)), Value: aws.String("v")}}, "InvalidTag", 400},
		{"value of 257", []types.Tag{{Key: aws.String("k"), Value: aws.String(strings.Repeat("v", 257))}}, "InvalidTag", 400},
		{"duplicate key", []types.Tag{{Key: aws.String("k"), Value: aws.String("1")}, {Key: aws.String("k"), Value: aws.String("2")}}, "InvalidTag", 400},
		{"aws: prefix", []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("1")}}, "InvalidTag", 400},
		{"empty key", []types.Tag{{Key: aws.String(""), Value: aws.String("1")}}, "InvalidTag", 400},
	}
	for _, tc := range bad {
		_, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: b, Key: aws.String("k"), Tagging: &types.Tagging{TagSet: tc.tags}})
		if apiCode(err) != tc.code || httpStatus(err) != tc.status {
			t.Errorf("PutObjectTagging with %s: %v, want %d %s", tc.what, err, tc.status, tc.code)
		}
	}
	// 128 and 256 characters (not bytes) are allowed.
	long := []types.Tag{{Key: aws.String(strings.Repeat("é", 128)), Value: aws.String(strings.Repeat("ü", 256))}}
	if _, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: b, Key: aws.String("k"), Tagging: &types.Tagging{TagSet: long}}); err != nil {
		t.Errorf("PutObjectTagging at the limits: %v", err)
	}
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("badtags"), Body: strings.NewReader("x"), Tagging: aws.String("a=1&a=2")})
	if apiCode(err) != "InvalidTag" {
		t.Errorf("PutObject with duplicate tag keys: %v", err)
	}
	surfaceExpectAbsent(t, c, "tags", "badtags")
	if _, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: b, Key: aws.String("missing")}); apiCode(err) != "NoSuchKey" {
		t.Errorf("GetObjectTagging of a missing key: %v", err)
	}
	if _, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: b, Key: aws.String("missing"), Tagging: &types.Tagging{TagSet: []types.Tag{}}}); apiCode(err) != "NoSuchKey" {
		t.Errorf("PutObjectTagging of a missing key: %v", err)
	}
	// Another user may not read the tags of root's objects.
	bob := ts.client3(bobAK, bobSK)
	if _, err := bob.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: b, Key: aws.String("k")}); apiCode(err) != "AccessDenied" {
		t.Errorf("bob's GetObjectTagging: %v", err)
	}
}

// Server-side encryption weir does not implement is refused with a clear error, never
// accepted and dropped; nothing is stored.
func TestUnimplementedEncryptionRefused(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.root()
	ctx := context.Background()
	mustCreateBucket(t, c, "sse")
	b := aws.String("sse")
	cases := map[string]*s3.PutObjectInput{
		"aws:kms": {Bucket: b, Key: aws.String("kms"), Body: strings.NewReader("x"), ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String("key-1")},
		"SSE-C": {Bucket: b, Key: aws.String("ssec"), Body: strings.NewReader("x"), SSECustomerAlgorithm: aws.String("AES256"),
			SSECustomerKey: aws.String("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="), SSECustomerKeyMD5: aws.String("zZ5FnqcIqUjVwvWmyog4zw==")},
		"storage class GLACIER": {Bucket: b, Key: aws.String("glacier"), Body: strings.NewReader("x"), StorageClass: types.StorageClassGlacier},
		"object lock":           {Bucket: b, Key: aws.String("lock"), Body: strings.NewReader("x"), ObjectLockLegalHoldStatus: types.ObjectLockLegalHoldStatusOn},
	}
	for what, in := range cases {
		_, err := c.PutObject(ctx, in)
		st := httpStatus(err)
		if st != http.StatusNotImplemented && st != http.StatusBadRequest {
			t.Errorf("PutObject with %s: %v, want a 501 or 400 refusal", what, err)
		}
		surfaceExpectAbsent(t, c, "sse", aws.ToString(in.Key))
	}
	_, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("kms-mp"), ServerSideEncryption: types.ServerSideEncryptionAwsKms})
	if apiCode(err) != "NotImplemented" || !strings.Contains(err.Error(), "encrypt") {
		t.Errorf("CreateMultipartUpload with aws:kms: %v", err)
	}
	// STANDARD is the storage class weir has.
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("std"), Body: strings.NewReader("x"), StorageClass: types.StorageClassStandard}); err != nil {
		t.Errorf("PutObject STANDARD: %v", err)
	}
}

// The policy sees an object's tags (input.object.tags): here, objects tagged classified are
// readable by root only.
func TestPolicySeesObjectTags(t *testing.T) {
	policy := map[string]string{"tags.rego": `package weir
default allow := false
allow if input.principal.root
allow if {
	input.bucket.owner == input.principal.access_key
	not input.object.tags.classified
}
allow if input.action in {"s3:CreateBucket", "s3:ListAllMyBuckets"}
reason := "classified objects are for root" if not allow
`}
	ts := startServer(t, serverOptions{Policy: policy})
	alice := ts.client3(userAK, userSK)
	ctx := context.Background()
	mustCreateBucket(t, alice, "pol")
	mustPut(t, alice, "pol", "open", []byte("x"))
	if _, err := alice.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("pol"), Key: aws.String("secret"), Body: strings.NewReader("y"), Tagging: aws.String("classified=yes")}); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, alice, "pol", "open"); string(got) != "x" {
		t.Fatalf("open: %q", got)
	}
	_, err := alice.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("pol"), Key: aws.String("secret")})
	if apiCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "classified") {
		t.Fatalf("GET of a classified object: %v, want AccessDenied by the policy", err)
	}
	if got := mustGet(t, ts.root(), "pol", "secret"); string(got) != "y" {
		t.Fatalf("root's GET: %q", got)
	}
}
