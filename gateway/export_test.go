package gateway

import "github.com/weirproject/weir/gateway/internal/checksum"

// ChecksumOf is the base64 S3 checksum of data with alg, for the tests.
func ChecksumOf(alg string, data []byte) string { return checksum.Sum(alg, data) }
