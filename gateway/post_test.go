package gateway_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/weirproject/weir/gateway/gatewaytest"
)

// formField is one field of a POST form, in order.
type formField struct{ name, value string }

// postForm sends a multipart/form-data POST to bucket with fields in order, then the file.
func postForm(t *testing.T, ts *testServer, bucket string, fields []formField, filename string, file []byte, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		if err := mw.WriteField(f.name, f.value); err != nil {
			t.Fatal(err)
		}
	}
	fw, err := mw.CreateFormFile("file", filename)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(file)
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/"+bucket, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	client := &http.Client{Transport: ts.client.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(readAll(t, resp.Body))
}

// signedForm is a form's fields signed by ak/sk with conditions, then extra fields in order.
func signedForm(ak, sk string, expires time.Time, conditions []any, fields ...formField) []formField {
	auth := gatewaytest.PostForm(ak, sk, time.Now(), expires, conditions...)
	out := append([]formField(nil), fields...)
	for _, name := range []string{"x-amz-algorithm", "x-amz-credential", "x-amz-date", "policy", "x-amz-signature"} {
		out = append(out, formField{name, auth[name]})
	}
	return out
}

func TestPostObject(t *testing.T) {
	ts := startServer(t, serverOptions{})
	ctx := context.Background()
	alice := ts.client3(userAK, userSK)
	if _, err := alice.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("forms")}); err != nil {
		t.Fatal(err)
	}
	hour := time.Now().Add(time.Hour)
	conds := []any{
		map[string]string{"bucket": "forms"},
		[]any{"starts-with", "$key", "uploads/"},
		[]any{"starts-with", "$Content-Type", "text/"},
		[]any{"eq", "$x-amz-meta-color", "blue"},
		[]any{"content-length-range", 1, 1000},
		[]any{"starts-with", "$success_action_status", ""},
		[]any{"starts-with", "$success_action_redirect", ""},
	}
	fields := func(extra ...formField) []formField {
		return signedForm(userAK, userSK, hour, conds, append([]formField{{"key", "uploads/${filename}"}, {"Content-Type", "text/plain"}, {"x-amz-meta-color", "blue"}}, extra...)...)
	}
	stored := func(key string) (string, *s3.GetObjectOutput) {
		t.Helper()
		out, err := alice.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("forms"), Key: aws.String(key)})
		if err != nil {
			return apiCode(err), nil
		}
		return string(readAll(t, out.Body)), out
	}

	// Default: 204, the object stored under the file's name with the form's attributes.
	resp, body := postForm(t, ts, "forms", fields(), "a.txt", []byte("hello form"), nil)
	if resp.StatusCode != 204 || resp.Header.Get("ETag") == "" {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	if got, out := stored("uploads/a.txt"); got != "hello form" || aws.ToString(out.ContentType) != "text/plain" || out.Metadata["color"] != "blue" || aws.ToString(out.ETag) != resp.Header.Get("ETag") {
		t.Fatalf("stored: %q %+v", got, out)
	}
	// 201: the PostResponse document.
	resp, body = postForm(t, ts, "forms", fields(formField{"success_action_status", "201"}), "b.txt", []byte("bee"), nil)
	var pr struct {
		Bucket, Key, ETag, Location string
	}
	if err := xml.Unmarshal([]byte(body), &pr); err != nil || resp.StatusCode != 201 || pr.Bucket != "forms" || pr.Key != "uploads/b.txt" ||
		pr.ETag != resp.Header.Get("ETag") || !strings.HasSuffix(pr.Location, "/forms/uploads/b.txt") {
		t.Fatalf("201: %d %s %v", resp.StatusCode, body, err)
	}
	if resp, body := postForm(t, ts, "forms", fields(formField{"success_action_status", "200"}), "c.txt", []byte("c"), nil); resp.StatusCode != 200 || body != "" {
		t.Fatalf("200: %d %s", resp.StatusCode, body)
	}
	// A redirect: 303 to the page, with bucket, key and ETag.
	resp, _ = postForm(t, ts, "forms", fields(formField{"success_action_redirect", "http://app.example/done?x=1"}), "d.txt", []byte("d"), nil)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 303 || loc == nil || loc.Host != "app.example" || loc.Query().Get("x") != "1" || loc.Query().Get("bucket") != "forms" ||
		loc.Query().Get("key") != "uploads/d.txt" || loc.Query().Get("etag") != resp.Header.Get("ETag") {
		t.Fatalf("redirect: %d %v", resp.StatusCode, resp.Header)
	}

	// Refused, nothing stored.
	for _, c := range []struct {
		name     string
		fields   []formField
		file     []byte
		hdr      map[string]string
		status   int
		code     string
		message  string
		filename string
	}{
		{"a field the policy does not cover", fields(formField{"x-amz-meta-extra", "1"}), []byte("x"), nil, 403, "AccessDenied", "Invalid according to Policy: Extra input fields: x-amz-meta-extra", "e1.txt"},
		{"a key outside the policy's prefix", signedForm(userAK, userSK, hour, conds, formField{"key", "other/e2.txt"}, formField{"Content-Type", "text/plain"}, formField{"x-amz-meta-color", "blue"}), []byte("x"), nil, 403, "AccessDenied", "Policy Condition failed: [&#34;starts-with&#34;,&#34;$key&#34;", "e2.txt"},
		{"a value the policy does not allow", signedForm(userAK, userSK, hour, conds, formField{"key", "uploads/e3.txt"}, formField{"Content-Type", "text/plain"}, formField{"x-amz-meta-color", "red"}), []byte("x"), nil, 403, "AccessDenied", "Policy Condition failed", "e3.txt"},
		{"an expired policy", signedForm(userAK, userSK, time.Now().Add(-time.Minute), conds, formField{"key", "uploads/${filename}"}, formField{"Content-Type", "text/plain"}, formField{"x-amz-meta-color", "blue"}), []byte("x"), nil, 403, "AccessDenied", "Invalid according to Policy: Policy expired.", "e4.txt"},
		{"a policy signed with another secret", signedForm(userAK, "wrong", hour, conds, formField{"key", "uploads/${filename}"}, formField{"Content-Type", "text/plain"}, formField{"x-amz-meta-color", "blue"}), []byte("x"), nil, 403, "SignatureDoesNotMatch", "", "e5.txt"},
		{"a file larger than content-length-range", fields(), bytes.Repeat([]byte("x"), 1001), nil, 400, "EntityTooLarge", "content-length-range allows at most 1000 bytes", "e6.txt"},
		{"an empty file below content-length-range", fields(), nil, nil, 400, "EntityTooSmall", "content-length-range needs at least 1 bytes, got 0", "e7.txt"},
		{"an unsigned x-amz header", fields(), []byte("x"), map[string]string{"x-amz-meta-color": "red"}, 403, "AccessDenied", "not signed", "e8.txt"},
		{"no policy", []formField{{"key", "uploads/e9.txt"}}, []byte("x"), nil, 403, "AccessDenied", "", "e9.txt"},
		{"fields before the file too large", fields(formField{"x-ignore-padding", strings.Repeat("p", 70<<10)}), []byte("x"), nil, 400, "MaxPostPreDataLengthExceeded", "", "e10.txt"},
		{"another bucket in the bucket field", fields(formField{"bucket", "elsewhere"}), []byte("x"), nil, 400, "InvalidArgument", "bucket field", "e12.txt"},
		{"signed by a user who may not write the bucket", signedForm(bobAK, bobSK, hour, conds, formField{"key", "uploads/${filename}"}, formField{"Content-Type", "text/plain"}, formField{"x-amz-meta-color", "blue"}), []byte("x"), nil, 403, "AccessDenied", "", "e11.txt"},
	} {
		resp, body := postForm(t, ts, "forms", c.fields, c.filename, c.file, c.hdr)
		if resp.StatusCode != c.status || !strings.Contains(body, "<Code>"+c.code+"</Code>") || !strings.Contains(body, c.message) {
			t.Errorf("%s: %d %s", c.name, resp.StatusCode, body)
		}
		for _, key := range []string{"uploads/" + c.filename, "other/" + c.filename} {
			if got, _ := stored(key); got != "NoSuchKey" {
				t.Errorf("%s: %s was stored (%q)", c.name, key, got)
			}
		}
	}
}

// TestPostObjectBoundsPartHeaders: a part header before the file counts against the fields'
// bound too; the multipart reader would otherwise hold up to 10 MiB of it.
func TestPostObjectBoundsPartHeaders(t *testing.T) {
	ts := startServer(t, serverOptions{})
	if _, err := ts.client3(userAK, userSK).CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("forms")}); err != nil {
		t.Fatal(err)
	}
	body := "--b\r\nContent-Disposition: form-data; name=\"key\"\r\nX-Pad: " + strings.Repeat("p", 200<<10) + "\r\n\r\nk\r\n" +
		"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\nx\r\n--b--\r\n"
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/forms", strings.NewReader(body))
	req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got := string(readAll(t, resp.Body))
	if resp.StatusCode != 400 || !strings.Contains(got, "MaxPostPreDataLengthExceeded") {
		t.Fatalf("%d %s", resp.StatusCode, got)
	}
}

// TestPostObjectGuards: a form's upload is a PutObject, with the bucket's strategy and its
// conditions, sent as form fields its policy covers.
func TestPostObjectGuards(t *testing.T) {
	ts := startServer(t, serverOptions{})
	ctx := context.Background()
	alice := ts.client3(userAK, userSK)
	if _, err := alice.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("strict-forms")}, withHeader("x-weir-concurrency", "etag")); err != nil {
		t.Fatal(err)
	}
	hour := time.Now().Add(time.Hour)
	conds := []any{map[string]string{"key": "k"}, []any{"starts-with", "$If-None-Match", ""}}
	resp, body := postForm(t, ts, "strict-forms", signedForm(userAK, userSK, hour, conds, formField{"key", "k"}), "f", []byte("1"), nil)
	if resp.StatusCode != 428 || !strings.Contains(body, "PreconditionRequired") {
		t.Fatalf("an unconditional upload to an etag bucket: %d %s", resp.StatusCode, body)
	}
	create := signedForm(userAK, userSK, hour, conds, formField{"key", "k"}, formField{"If-None-Match", "*"})
	if resp, body := postForm(t, ts, "strict-forms", create, "f", []byte("first"), nil); resp.StatusCode != 204 {
		t.Fatalf("create-only upload: %d %s", resp.StatusCode, body)
	}
	if resp, body := postForm(t, ts, "strict-forms", create, "f", []byte("second"), nil); resp.StatusCode != 412 || !strings.Contains(body, "PreconditionFailed") {
		t.Fatalf("create-only upload of an existing key: %d %s", resp.StatusCode, body)
	}
	out, err := alice.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("strict-forms"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(readAll(t, out.Body)); got != "first" {
		t.Fatalf("stored %q", got)
	}
}

// TestPostObjectStreamsLargeFile: a file of several chunks goes through whole.
func TestPostObjectStreamsLargeFile(t *testing.T) {
	ts := startServer(t, serverOptions{})
	ctx := context.Background()
	alice := ts.client3(userAK, userSK)
	if _, err := alice.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("big-forms")}); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 6<<20+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	form := signedForm(userAK, userSK, time.Now().Add(time.Hour), []any{map[string]string{"key": "big"}}, formField{"key", "big"})
	if resp, body := postForm(t, ts, "big-forms", form, "big.bin", data, nil); resp.StatusCode != 204 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	out, err := alice.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("big-forms"), Key: aws.String("big")})
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, out.Body); !bytes.Equal(got, data) {
		t.Fatalf("stored %d bytes, want %d", len(got), len(data))
	}
}
