package main

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/weirproject/weir/gateway/gatewaytest"
)

// TestCreateOnly runs the program against a real weir: of 8 concurrent If-None-Match: * creators
// exactly one creates the key and the other 7 get 412 and read the winner's name; a second run
// creates nothing (8 of 8 get 412) and still reports the first winner; and a plain second create
// with If-None-Match: * is 412 PreconditionFailed while the stored object is unchanged.
func TestCreateOnly(t *testing.T) {
	endpoint := gatewaytest.Start(t, gatewaytest.Options{}).URL
	args := []string{"-endpoint", endpoint, "-access-key", gatewaytest.RootAccessKey, "-secret-key", gatewaytest.RootSecretKey, "-n", "8"}
	var out bytes.Buffer
	if err := run(context.Background(), args, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	t.Log(out.String())
	m := regexp.MustCompile(`(?m)^(creator-\d+) created claims/leader\n7 of 8 creators got 412 PreconditionFailed; all read the owner: (creator-\d+)\n$`).FindStringSubmatch(out.String())
	if m == nil || m[1] != m[2] {
		t.Fatalf("want exactly one creator, and everyone reading its name:\n%s", out.String())
	}
	winner := m[1]

	out.Reset()
	if err := run(context.Background(), args, &out); err != nil {
		t.Fatalf("second run: %v\n%s", err, out.String())
	}
	if want := "8 of 8 creators got 412 PreconditionFailed; all read the owner: " + winner + "\n"; out.String() != want {
		t.Fatalf("second run:\n%s\nwant:\n%s", out.String(), want)
	}

	ctx := context.Background()
	c := s3.New(s3.Options{BaseEndpoint: aws.String(endpoint), UsePathStyle: true, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(gatewaytest.RootAccessKey, gatewaytest.RootSecretKey, "")})
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("claims"), Key: aws.String("leader"),
		Body: strings.NewReader("intruder"), IfNoneMatch: aws.String("*")})
	if httpStatus(err) != http.StatusPreconditionFailed || errorCode(err) != "PreconditionFailed" {
		t.Fatalf("second create: %v (want 412 PreconditionFailed)", err)
	}
	created, owner, err := claim(ctx, c, "claims", "leader", "late")
	if err != nil || created || owner != winner {
		t.Fatalf("claim after the race: created=%v owner=%q err=%v (want false, %q)", created, owner, err, winner)
	}
	// A fresh key is created by the first claim.
	if created, owner, err := claim(ctx, c, "claims", "other", "first"); err != nil || !created || owner != "first" {
		t.Fatalf("claim of a fresh key: created=%v owner=%q err=%v", created, owner, err)
	}
}
