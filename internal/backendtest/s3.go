package backendtest

import (
	"context"
	"fmt"
	"net"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3 credentials of the servers S3 starts.
const (
	S3AccessKey = "weirtestaccess"
	S3SecretKey = "weirtestsecret"
)

// S3 starts versitygw (a third-party S3 server) over a temporary directory for t, creates a
// bucket in it, and returns the bucket's URL in weir's --blobs form,
// s3://ACCESS:SECRET@127.0.0.1:PORT/BUCKET. Without versitygw it skips t (see Skip).
func S3(t testing.TB) string {
	t.Helper()
	bin := versitygw()
	if bin == "" {
		Skip(t, "versitygw (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")
	}
	s, err := startS3(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s.url
}

// s3Server is a running versitygw.
type s3Server struct {
	url string
	dir string
	cmd *exec.Cmd
}

func (s *s3Server) stop() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
	os.RemoveAll(s.dir)
}

func startS3(bin string) (*s3Server, error) {
	dir, err := os.MkdirTemp("", "weir-s3-")
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &s3Server{dir: dir}
	var addr string
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		addr = fmt.Sprintf("127.0.0.1:%d", port)
		logName := filepath.Join(dir, fmt.Sprintf("versitygw-%d.log", attempt))
		log, err := os.Create(logName)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		cmd := exec.Command(bin, "--access", S3AccessKey, "--secret", S3SecretKey, "--port", addr, "posix", root)
		cmd.Stdout, cmd.Stderr = log, log
		err = cmd.Start()
		log.Close()
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("start versitygw: %w", err)
		}
		if waitListening(addr) {
			s.cmd = cmd
			break
		}
		cmd.Process.Kill()
		cmd.Wait()
		if attempt == 2 { // another process took the port between freePort and the start
			out, _ := os.ReadFile(logName)
			os.RemoveAll(dir)
			return nil, fmt.Errorf("versitygw did not start on %s:\n%s", addr, out)
		}
	}
	client := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(S3AccessKey, S3SecretKey, ""),
	})
	const bucket = "weir-data"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		s.stop()
		return nil, fmt.Errorf("create bucket in versitygw: %w", err)
	}
	s.url = fmt.Sprintf("s3://%s:%s@%s/%s", S3AccessKey, S3SecretKey, addr, bucket)
	return s, nil
}

// waitListening waits until addr accepts connections (versitygw is up), or 30 s pass.
func waitListening(addr string) bool {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return true
		}
	}
	return false
}

// versitygw finds the versitygw binary, or "".
func versitygw() string {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	p := filepath.Join(gopath, "bin", "versitygw")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// S3Keys lists the names of the objects under the bucket and prefix of url (an S3 URL in weir's
// --blobs form), the prefix taken off.
func S3Keys(t testing.TB, url string) []string {
	t.Helper()
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := u.User.Password()
	client := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + u.Host), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(u.User.Username(), secret, "")})
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	var names []string
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list %s: %v", bucket, err)
		}
		for _, o := range page.Contents {
			names = append(names, strings.TrimPrefix(aws.ToString(o.Key), prefix))
		}
	}
	return names
}
