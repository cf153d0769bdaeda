package gateway_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/weirproject/weir/internal/backendtest"
)

// TestDatabaseFailover: the gateway is given a primary and its synchronous standby
// (postgres://h1:p1,h2:p2/db?target_session_attrs=read-write). Under a load of 8 writing
// clients the primary's machine dies (SIGKILL of the postmaster and its backends) and the standby
// is promoted: the gateway resumes on the new primary without a restart, requests refused
// meanwhile are 503, and every write acknowledged before, during or after reads back.
func TestDatabaseFailover(t *testing.T) {
	primary, standby := backendtest.PostgresPair(t)
	store := backendtest.MultiHostURL(t, backendtest.PostgresDatabase(t, primary.URL), primary, standby)
	ts := startServer(t, serverOptions{Store: store})
	ctx := context.Background()
	if _, err := ts.root().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("failover")}); err != nil {
		t.Fatal(err)
	}
	load := startWriteLoad(t, ts, "failover", func(err error) bool { return httpStatus(err) == http.StatusServiceUnavailable })
	time.Sleep(time.Second)
	if err := primary.KillPostmaster(); err != nil {
		t.Fatal(err)
	}
	if err := standby.Promote(); err != nil {
		t.Fatal(err)
	}
	load.mark()
	load.awaitRecovery(t, 30*time.Second, "the standby's promotion")
	load.verify(t)
}
