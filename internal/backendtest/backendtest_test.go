package backendtest

import (
	"context"
	"io"
	neturl "net/url"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
)

// TestPostgres: the server Postgres gives accepts connections and runs SQL, and a second one started
// meanwhile is a different server.
func TestPostgres(t *testing.T) {
	ctx := context.Background()
	url := Postgres(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var version string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(version, "PostgreSQL") {
		t.Fatalf("version() = %q", version)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE t (v int)"); err != nil {
		t.Fatal(err)
	}
	if other := Postgres(t); other == url && os.Getenv("WEIR_TEST_POSTGRES") == "" {
		t.Fatalf("two Postgres calls returned the same server %s", url)
	}
}

// TestS3: the server S3 gives stores and returns an object through the URL it returns.
func TestS3(t *testing.T) {
	raw := S3(t)
	u, err := neturl.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := u.User.Password()
	client := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + u.Host), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(u.User.Username(), secret, "")})
	ctx := context.Background()
	bucket := strings.TrimPrefix(u.Path, "/")
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("k"), Body: strings.NewReader("hello")}); err != nil {
		t.Fatal(err)
	}
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	if b, _ := io.ReadAll(out.Body); string(b) != "hello" {
		t.Fatalf("read back %q", b)
	}
}
