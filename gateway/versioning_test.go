package gateway_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// errHeader returns a header of a failed SDK call's response.
func errHeader(err error, name string) string {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.Header.Get(name)
	}
	return ""
}

func enableVersioning(t testing.TB, c *s3.Client, bucket string, status types.BucketVersioningStatus) {
	t.Helper()
	if _, err := c.PutBucketVersioning(context.Background(), &s3.PutBucketVersioningInput{Bucket: aws.String(bucket),
		VersioningConfiguration: &types.VersioningConfiguration{Status: status}}); err != nil {
		t.Fatalf("PutBucketVersioning %s: %v", status, err)
	}
}

func getVersion(t testing.TB, c *s3.Client, bucket, key, id string) ([]byte, *s3.GetObjectOutput, error) {
	t.Helper()
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if id != "" {
		in.VersionId = aws.String(id)
	}
	out, err := c.GetObject(context.Background(), in)
	if err != nil {
		return nil, nil, err
	}
	return readAll(t, out.Body), out, nil
}

// versionList renders ListObjectVersions as key@id[*][DM], in the order of the response's
// <Version> and <DeleteMarker> elements (the SDK splits them into two lists), page by page.
func versionList(t testing.TB, c *s3.Client, in *s3.ListObjectVersionsInput) []string {
	t.Helper()
	var out []string
	for {
		var raw []byte
		res, err := c.ListObjectVersions(context.Background(), in, s3.WithAPIOptions(func(st *middleware.Stack) error {
			return st.Deserialize.Add(middleware.DeserializeMiddlewareFunc("keep-body", func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
				o, m, err := next.HandleDeserialize(ctx, in)
				if r, ok := o.RawResponse.(*smithyhttp.Response); ok && err == nil {
					raw, _ = io.ReadAll(r.Body)
					r.Body = io.NopCloser(bytes.NewReader(raw))
				}
				return o, m, err
			}), middleware.After)
		}))
		if err != nil {
			t.Fatalf("ListObjectVersions: %v", err)
		}
		var doc struct {
			Entries []struct {
				XMLName   xml.Name
				Key       string `xml:"Key"`
				VersionID string `xml:"VersionId"`
				IsLatest  bool   `xml:"IsLatest"`
			} `xml:",any"`
		}
		if err := xml.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("ListObjectVersions body: %v", err)
		}
		n := 0
		for _, e := range doc.Entries {
			if e.XMLName.Local != "Version" && e.XMLName.Local != "DeleteMarker" {
				continue
			}
			n++
			s := e.Key + "@" + e.VersionID
			if e.IsLatest {
				s += "*"
			}
			if e.XMLName.Local == "DeleteMarker" {
				s += "DM"
			}
			out = append(out, s)
		}
		if n != len(res.Versions)+len(res.DeleteMarkers) {
			t.Fatalf("the SDK read %d versions and %d markers of %d entries", len(res.Versions), len(res.DeleteMarkers), n)
		}
		if !aws.ToBool(res.IsTruncated) {
			return out
		}
		in.KeyMarker, in.VersionIdMarker = res.NextKeyMarker, res.NextVersionIdMarker
	}
}

// Versioning end to end through aws-sdk-go-v2: the configuration, versions on every write,
// delete markers, reads and deletes by version id, copies of an old version, DeleteObjects,
// ListObjectVersions, and the error answers S3 gives.
func TestVersioning(t *testing.T) {
	ts := startServer(t, serverOptions{MinPartSize: 5})
	c := ts.root()
	ctx := context.Background()
	mustCreateBucket(t, c, "ver")
	b := aws.String("ver")

	// A bucket that never had versioning: an empty configuration, no version ids on writes.
	v, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: b})
	if err != nil || v.Status != "" {
		t.Fatalf("GetBucketVersioning of a new bucket: %+v %v", v, err)
	}
	p0, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("k"), Body: strings.NewReader("zero")})
	if err != nil || p0.VersionId != nil {
		t.Fatalf("PUT on an unversioned bucket: version id %v, %v", p0.VersionId, err)
	}

	// Refused configurations change nothing.
	_, err = c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: b, VersioningConfiguration: &types.VersioningConfiguration{
		Status: types.BucketVersioningStatusEnabled, MFADelete: types.MFADeleteEnabled}})
	if apiCode(err) != "NotImplemented" {
		t.Fatalf("MFA delete: %v, want NotImplemented", err)
	}
	resp, body, _ := ts.do(t, ts.signed(t, http.MethodPut, "/ver?versioning", []byte(`<VersioningConfiguration><Status>On</Status></VersioningConfiguration>`), nil, "", time.Now()))
	if resp.StatusCode != 400 || body.Code != "MalformedXML" {
		t.Fatalf("status On: %d %s", resp.StatusCode, body.Code)
	}
	if v, _ := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: b}); v.Status != "" {
		t.Fatalf("a refused configuration was stored: %q", v.Status)
	}

	enableVersioning(t, c, "ver", types.BucketVersioningStatusEnabled)
	if v, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: b}); err != nil || v.Status != types.BucketVersioningStatusEnabled {
		t.Fatalf("GetBucketVersioning: %+v %v", v, err)
	}
	p1, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("k"), Body: strings.NewReader("one")})
	if err != nil || aws.ToString(p1.VersionId) == "" || aws.ToString(p1.VersionId) == "null" {
		t.Fatalf("PUT on a versioned bucket: version id %v, %v", p1.VersionId, err)
	}
	id1 := aws.ToString(p1.VersionId)
	if gen := "x-weir-generation"; fmt.Sprintf("%016x", mustHeadGeneration(t, ts, "/ver/k")) != id1 {
		t.Fatalf("the version id %s is not the %s of the write", id1, gen)
	}
	p2, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("k"), Body: strings.NewReader("two")})
	if err != nil {
		t.Fatal(err)
	}
	id2 := aws.ToString(p2.VersionId)
	for id, want := range map[string]string{"": "two", id2: "two", id1: "one", "null": "zero"} {
		got, out, err := getVersion(t, c, "ver", "k", id)
		if err != nil || string(got) != want {
			t.Fatalf("GET version %q: %q %v, want %q", id, got, err, want)
		}
		if wantID := map[string]string{"": id2}[id]; aws.ToString(out.VersionId) != id && aws.ToString(out.VersionId) != wantID {
			t.Fatalf("GET version %q answered x-amz-version-id %v", id, out.VersionId)
		}
	}
	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("k"), VersionId: aws.String(id1)})
	if err != nil || aws.ToInt64(h.ContentLength) != 3 || aws.ToString(h.VersionId) != id1 {
		t.Fatalf("HEAD of version 1: %+v %v", h, err)
	}

	_, _, err = getVersion(t, c, "ver", "k", "00000000000fffff")
	if apiCode(err) != "NoSuchVersion" || httpStatus(err) != 404 {
		t.Fatalf("GET of an unknown version: %v", err)
	}
	_, _, err = getVersion(t, c, "ver", "k", "v1")
	if apiCode(err) != "InvalidArgument" || httpStatus(err) != 400 {
		t.Fatalf("GET of a malformed version id: %v", err)
	}

	// DELETE writes a delete marker; the key is gone, its versions are not.
	del, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: aws.String("k")})
	if err != nil || !aws.ToBool(del.DeleteMarker) || aws.ToString(del.VersionId) <= id2 {
		t.Fatalf("DELETE on a versioned bucket: %+v %v", del, err)
	}
	marker := aws.ToString(del.VersionId)
	_, _, err = getVersion(t, c, "ver", "k", "")
	if apiCode(err) != "NoSuchKey" || errHeader(err, "x-amz-delete-marker") != "true" || errHeader(err, "x-amz-version-id") != marker {
		t.Fatalf("GET of a deleted key: %v (delete marker %q)", err, errHeader(err, "x-amz-delete-marker"))
	}
	_, _, err = getVersion(t, c, "ver", "k", marker)
	if httpStatus(err) != 405 || apiCode(err) != "MethodNotAllowed" || errHeader(err, "x-amz-delete-marker") != "true" {
		t.Fatalf("GET of a delete marker: %v", err)
	}
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("k"), VersionId: aws.String(marker)})
	if httpStatus(err) != 405 || errHeader(err, "x-amz-delete-marker") != "true" {
		t.Fatalf("HEAD of a delete marker: %v", err)
	}

	// Conditions meet the current version: a delete marker is no object.
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("k"), Body: strings.NewReader("x"), IfMatch: p2.ETag})
	if apiCode(err) != "NoSuchKey" {
		t.Fatalf("If-Match over a delete marker: %v, want NoSuchKey", err)
	}

	// Restore: copy the old version back over the marker.
	cp, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("k"), CopySource: aws.String("ver/k?versionId=" + id1), IfNoneMatch: aws.String("*")})
	if err != nil || aws.ToString(cp.CopySourceVersionId) != id1 || aws.ToString(cp.VersionId) <= marker {
		t.Fatalf("copy of version 1: %+v %v", cp, err)
	}
	if got, _, err := getVersion(t, c, "ver", "k", ""); err != nil || string(got) != "one" {
		t.Fatalf("after the restore: %q %v", got, err)
	}
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("c"), CopySource: aws.String("ver/k?versionId=" + marker)})
	if httpStatus(err) != 405 {
		t.Fatalf("copy of a delete marker: %v", err)
	}
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("c"), CopySource: aws.String("ver/k?versionId=00000000000fffff")})
	if apiCode(err) != "NoSuchVersion" {
		t.Fatalf("copy of an unknown version: %v", err)
	}
	restored := aws.ToString(cp.VersionId)

	// Multipart: Complete and UploadPartCopy name versions too.
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: b, Key: aws.String("mp"), UploadId: up.UploadId, PartNumber: aws.Int32(1),
		CopySource: aws.String("ver/k?versionId=" + id2)})
	if err != nil || aws.ToString(pc.CopySourceVersionId) != id2 {
		t.Fatalf("UploadPartCopy of version 2: %+v %v", pc, err)
	}
	done, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String("mp"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: pc.CopyPartResult.ETag}}}})
	if err != nil || aws.ToString(done.VersionId) == "" {
		t.Fatalf("Complete on a versioned bucket: %+v %v", done, err)
	}
	if got, _, _ := getVersion(t, c, "ver", "mp", ""); string(got) != "two" {
		t.Fatalf("the part copied from version 2: %q", got)
	}

	want := []string{"k@" + restored + "*", "k@" + marker + "DM", "k@" + id2, "k@" + id1, "k@null", "mp@" + aws.ToString(done.VersionId) + "*"}
	if got := versionList(t, c, &s3.ListObjectVersionsInput{Bucket: b}); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("versions %v, want %v", got, want)
	}
	for _, max := range []int32{1, 2, 4} {
		if got := versionList(t, c, &s3.ListObjectVersionsInput{Bucket: b, MaxKeys: aws.Int32(max)}); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("versions in pages of %d: %v, want %v", max, got, want)
		}
	}
	if got := versionList(t, c, &s3.ListObjectVersionsInput{Bucket: b, Prefix: aws.String("m")}); fmt.Sprint(got) != fmt.Sprint(want[5:]) {
		t.Fatalf("versions under m: %v", got)
	}
	_, err = c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: b, KeyMarker: aws.String("k"), VersionIdMarker: aws.String("bad")})
	if apiCode(err) != "InvalidArgument" {
		t.Fatalf("a malformed version-id-marker: %v", err)
	}

	// DeleteObjects: by version id (the marker, removed for good) and without (a new marker).
	dr, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: b, Delete: &types.Delete{Objects: []types.ObjectIdentifier{
		{Key: aws.String("k"), VersionId: aws.String(marker)},
		{Key: aws.String("mp")},
		{Key: aws.String("k"), VersionId: aws.String("bad")},
	}}})
	if err != nil || len(dr.Deleted) != 2 || len(dr.Errors) != 1 {
		t.Fatalf("DeleteObjects: %+v %v", dr, err)
	}
	for _, d := range dr.Deleted {
		switch aws.ToString(d.Key) {
		case "k":
			if aws.ToString(d.VersionId) != marker || !aws.ToBool(d.DeleteMarker) {
				t.Fatalf("DeleteObjects of the marker: %+v", d)
			}
		case "mp":
			if !aws.ToBool(d.DeleteMarker) || aws.ToString(d.DeleteMarkerVersionId) == "" {
				t.Fatalf("DeleteObjects without a version id: %+v", d)
			}
		}
	}
	if e := dr.Errors[0]; aws.ToString(e.Code) != "InvalidArgument" || aws.ToString(e.VersionId) != "bad" {
		t.Fatalf("DeleteObjects of a malformed version id: %+v", e)
	}

	// DELETE by version id removes it for good.
	dv, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: aws.String("k"), VersionId: aws.String(id1)})
	if err != nil || aws.ToString(dv.VersionId) != id1 || aws.ToBool(dv.DeleteMarker) {
		t.Fatalf("DELETE of version 1: %+v %v", dv, err)
	}
	if _, _, err := getVersion(t, c, "ver", "k", id1); apiCode(err) != "NoSuchVersion" {
		t.Fatalf("GET of a deleted version: %v", err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: aws.String("k"), VersionId: aws.String("nope")}); apiCode(err) != "InvalidArgument" {
		t.Fatalf("DELETE of a malformed version id: %v", err)
	}
	// Tagging reads any version, and writes the current version only.
	if tg, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: b, Key: aws.String("k"), VersionId: aws.String(id2)}); err != nil || aws.ToString(tg.VersionId) != id2 {
		t.Fatalf("GetObjectTagging of version 2: %+v %v", tg, err)
	}
	// Tagging writes the current version only.
	_, err = c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: b, Key: aws.String("k"), VersionId: aws.String(id2),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}}})
	if apiCode(err) != "NotImplemented" {
		t.Fatalf("PutObjectTagging of a version: %v", err)
	}

	// Suspended: writes make the null version, replacing the one before.
	enableVersioning(t, c, "ver", types.BucketVersioningStatusSuspended)
	for _, body := range []string{"n1", "n2"} {
		p, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("k"), Body: strings.NewReader(body)})
		if err != nil || aws.ToString(p.VersionId) != "null" {
			t.Fatalf("PUT with versioning suspended: %v %v", p.VersionId, err)
		}
	}
	want = []string{"k@null*", "k@" + restored, "k@" + id2}
	if got := versionList(t, c, &s3.ListObjectVersionsInput{Bucket: b, Prefix: aws.String("k")}); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("versions after suspended writes %v, want %v", got, want)
	}
	if got, _, _ := getVersion(t, c, "ver", "k", "null"); string(got) != "n2" {
		t.Fatalf("the null version: %q", got)
	}
	// A bucket holding versions is not empty.
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: b}); apiCode(err) != "BucketNotEmpty" {
		t.Fatalf("DeleteBucket with versions left: %v", err)
	}
}

// mustHeadGeneration returns x-weir-generation of a HEAD of path.
func mustHeadGeneration(t testing.TB, ts *testServer, path string) uint64 {
	t.Helper()
	resp, _, _ := ts.do(t, ts.signed(t, http.MethodHead, path, nil, nil, "", time.Now()))
	var g uint64
	if _, err := fmt.Sscan(resp.Header.Get("x-weir-generation"), &g); err != nil {
		t.Fatalf("HEAD %s: %d, x-weir-generation %q", path, resp.StatusCode, resp.Header.Get("x-weir-generation"))
	}
	return g
}

// An unversioned bucket answers as before: no version headers anywhere.
func TestUnversionedBucketSendsNoVersionIDs(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.root()
	mustCreateBucket(t, c, "plain")
	for _, req := range []*http.Request{
		ts.signed(t, http.MethodPut, "/plain/k", []byte("x"), nil, "", time.Now()),
		ts.signed(t, http.MethodGet, "/plain/k", nil, nil, "", time.Now()),
		ts.signed(t, http.MethodHead, "/plain/k", nil, nil, "", time.Now()),
		ts.signed(t, http.MethodDelete, "/plain/k", nil, nil, "", time.Now()),
	} {
		resp, _, _ := ts.do(t, req)
		if resp.StatusCode >= 300 || resp.Header.Get("x-amz-version-id") != "" || resp.Header.Get("x-amz-delete-marker") != "" {
			t.Fatalf("%s on an unversioned bucket: %d, version id %q", req.Method, resp.StatusCode, resp.Header.Get("x-amz-version-id"))
		}
	}
	if _, _, err := getVersion(t, c, "plain", "k", ""); apiCode(err) != "NoSuchKey" || errHeader(err, "x-amz-delete-marker") != "" {
		t.Fatalf("GET of the deleted key: %v", err)
	}
}
