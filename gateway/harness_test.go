package gateway_test

import (
	"errors"
	"io"
	"net/http"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/weirproject/weir/gateway/gatewaytest"
	"github.com/weirproject/weir/internal/backendtest"
)

// TestMain stops the servers the tests shared (WEIR_TEST_STORE).
func TestMain(m *testing.M) {
	code := m.Run()
	backendtest.StopShared()
	os.Exit(code)
}

// The credentials of the test server's users (gatewaytest's).
const (
	rootAK = gatewaytest.RootAccessKey
	rootSK = gatewaytest.RootSecretKey
	userAK = gatewaytest.AliceAccessKey
	userSK = gatewaytest.AliceSecretKey
	bobAK  = gatewaytest.BobAccessKey
	bobSK  = gatewaytest.BobSecretKey
)

// The gateway's tests start their servers with gatewaytest, like every package's tests; these
// short names keep the tests readable.
type (
	serverOptions = gatewaytest.Options
	syncBuffer    = gatewaytest.SyncBuffer
)

// testServer is a gatewaytest server with the raw-request helpers of the gateway's tests.
type testServer struct {
	*gatewaytest.Server
	client *http.Client // for raw requests
}

func startServer(t testing.TB, o serverOptions) *testServer {
	t.Helper()
	s := gatewaytest.Start(t, o)
	return &testServer{Server: s, client: s.HTTP}
}

func (ts *testServer) client3(ak, sk string, opts ...func(*s3.Options)) *s3.Client {
	return ts.Client(ak, sk, opts...)
}

func (ts *testServer) root(opts ...func(*s3.Options)) *s3.Client { return ts.Root(opts...) }

func (ts *testServer) metric(t testing.TB, series string) float64 { return ts.Metric(t, series) }

// apiCode returns the S3 error code of err ("" if err is nil or not an S3 API error).
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// apiMessage returns the S3 error message of a failed SDK call ("" if none).
func apiMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return ""
}

// httpStatus returns the HTTP status of a failed SDK call (0 if none).
func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func readAll(t testing.TB, r io.ReadCloser) []byte {
	t.Helper()
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
