package gateway_test

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestListPagingTenThousandKeys lists 10,000 keys with mixed prefixes page by page with a
// delimiter, with both API versions, and checks every key and common prefix comes exactly once,
// in order.
func TestListPagingTenThousandKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 PUTs")
	}
	ts := startServer(t, serverOptions{})
	ctx := context.Background()
	c := ts.root()
	mustCreateBucket(t, c, "many")
	var keys []string
	for i := 0; i < 10000; i++ {
		var k string
		switch i % 4 {
		case 0:
			k = fmt.Sprintf("top-%05d", i)
		case 1:
			k = fmt.Sprintf("a/%03d/leaf-%05d", i%37, i)
		case 2:
			k = fmt.Sprintf("b/leaf-%05d", i)
		default:
			k = fmt.Sprintf("z%02d/x/y-%05d", i%11, i)
		}
		keys = append(keys, k)
	}
	var wg sync.WaitGroup
	work := make(chan string)
	errs := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("many"), Key: aws.String(k), Body: strings.NewReader(k)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// What a delimiter listing must return: top-level keys and first-level prefixes.
	want := map[string]bool{}
	for _, k := range keys {
		if i := strings.Index(k, "/"); i >= 0 {
			want[k[:i+1]] = true
		} else {
			want[k] = true
		}
	}
	var wantSorted []string
	for k := range want {
		wantSorted = append(wantSorted, k)
	}
	sort.Strings(wantSorted)

	// V2, delimiter "/", pages of 97.
	var got []string
	var token *string
	pages := 0
	for {
		out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("many"), Delimiter: aws.String("/"), MaxKeys: aws.Int32(97), ContinuationToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, pageEntries(out.Contents, out.CommonPrefixes)...)
		if int(aws.ToInt32(out.KeyCount)) != len(out.Contents)+len(out.CommonPrefixes) {
			t.Fatalf("KeyCount %d for %d entries", aws.ToInt32(out.KeyCount), len(out.Contents)+len(out.CommonPrefixes))
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		token = out.NextContinuationToken
	}
	assertSameList(t, "v2 delimiter", got, wantSorted)

	// V2 under a prefix, full recursion without delimiter, pages of 1000.
	got = got[:0]
	paginator := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("many"), Prefix: aws.String("a/")})
	for paginator.HasMorePages() {
		out, err := paginator.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, pageEntries(out.Contents, nil)...)
	}
	var wantA []string
	for _, k := range keys {
		if strings.HasPrefix(k, "a/") {
			wantA = append(wantA, k)
		}
	}
	sort.Strings(wantA)
	assertSameList(t, "v2 prefix a/", got, wantA)

	// V1 with marker paging, delimiter "/" under prefix "z03/".
	got = got[:0]
	marker := ""
	for {
		out, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String("many"), Prefix: aws.String("z03/x/"), Delimiter: aws.String("/"), MaxKeys: aws.Int32(50), Marker: aws.String(marker)})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, pageEntries(out.Contents, out.CommonPrefixes)...)
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		marker = aws.ToString(out.NextMarker)
	}
	var wantZ []string
	for _, k := range keys {
		if strings.HasPrefix(k, "z03/x/") {
			wantZ = append(wantZ, k)
		}
	}
	sort.Strings(wantZ)
	assertSameList(t, "v1 marker", got, wantZ)

	// start-after and encoding-type=url.
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("many"), StartAfter: aws.String("top-09990"), EncodingType: types.EncodingTypeUrl})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Contents) == 0 || aws.ToString(out.Contents[0].Key) <= "top-09990" {
		t.Fatalf("start-after: first key %v", out.Contents)
	}
}

func pageEntries(objs []types.Object, prefixes []types.CommonPrefix) []string {
	var all []string
	for _, o := range objs {
		all = append(all, aws.ToString(o.Key))
	}
	for _, p := range prefixes {
		all = append(all, aws.ToString(p.Prefix))
	}
	sort.Strings(all) // within a page, S3 returns keys and prefixes in two lists
	return all
}

func assertSameList(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: entry %d is %q, want %q (duplicate, missing or out of order)", what, i, got[i], want[i])
		}
	}
}

func TestListEncodingURL(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.root()
	mustCreateBucket(t, c, "enc")
	key := "dir with space/ünïcødé+plus&amp"
	mustPut(t, c, "enc", key, []byte("x"))
	out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("enc"), EncodingType: types.EncodingTypeUrl})
	if err != nil {
		t.Fatal(err)
	}
	// aws-sdk-go-v2 hands url-encoded keys back as sent: decoding them gives the original key.
	if len(out.Contents) != 1 {
		t.Fatalf("keys: %+v", out.Contents)
	}
	got, err := url.QueryUnescape(aws.ToString(out.Contents[0].Key))
	if err != nil || got != key {
		t.Fatalf("encoded key %q decodes to %q, want %q", aws.ToString(out.Contents[0].Key), got, key)
	}
	if got := mustGet(t, c, "enc", key); string(got) != "x" {
		t.Fatalf("get %q: %q", key, got)
	}
}
