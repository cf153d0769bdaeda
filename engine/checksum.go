package engine

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"hash/crc32"
)

// soleChecksum returns a part's one checksum, if it has exactly one.
func soleChecksum(c Checksums) (alg, val string) {
	if len(c) != 1 {
		return "", ""
	}
	for k, v := range c {
		return k, v
	}
	return "", ""
}

// compositeChecksum is S3's checksum of a multipart object: the algorithm applied to the
// concatenation of the parts' binary checksums (the caller appends "-<parts>").
func compositeChecksum(alg string, parts []string) (string, bool) {
	var h hash.Hash
	switch alg {
	case "CRC32":
		h = crc32.NewIEEE()
	case "CRC32C":
		h = crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case "SHA1":
		h = sha1.New()
	case "SHA256":
		h = sha256.New()
	case "CRC64NVME":
		// CRC64NVME is full-object only in S3; a composite value would not be what clients expect.
		return "", false
	default:
		return "", false
	}
	for _, p := range parts {
		raw, err := base64.StdEncoding.DecodeString(p)
		if err != nil {
			return "", false
		}
		h.Write(raw)
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil)), true
}
