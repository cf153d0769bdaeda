package gatewaytest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"time"
)

// PostForm returns the authority fields of a browser POST form, as a server that hands out
// upload forms computes them: a policy expiring at expires with the given conditions (plus
// the eq conditions S3 requires on x-amz-algorithm, x-amz-credential and x-amz-date), and
// its SigV4 signature with accessKey/secretKey for region us-east-1, dated now.
func PostForm(accessKey, secretKey string, now, expires time.Time, conditions ...any) map[string]string {
	date := now.UTC().Format("20060102")
	fields := map[string]string{
		"x-amz-algorithm":  "AWS4-HMAC-SHA256",
		"x-amz-credential": accessKey + "/" + date + "/us-east-1/s3/aws4_request",
		"x-amz-date":       now.UTC().Format("20060102T150405Z"),
	}
	for _, name := range []string{"x-amz-algorithm", "x-amz-credential", "x-amz-date"} {
		conditions = append(conditions, map[string]string{name: fields[name]})
	}
	doc, err := json.Marshal(map[string]any{"expiration": expires.UTC().Format("2006-01-02T15:04:05.000Z"), "conditions": conditions})
	if err != nil {
		panic(err) // conditions are the test's own literals
	}
	policy := base64.StdEncoding.EncodeToString(doc)
	key := []byte("AWS4" + secretKey)
	for _, part := range []string{date, "us-east-1", "s3", "aws4_request", policy} {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(part))
		key = m.Sum(nil)
	}
	fields["policy"] = policy
	fields["x-amz-signature"] = hex.EncodeToString(key)
	return fields
}
