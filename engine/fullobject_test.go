package engine

import (
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"hash/crc64"
	"math/rand"
	"testing"
)

// The combination of the parts' CRCs is the CRC of the whole, for every full-object algorithm
// and for parts of odd sizes.
func TestFullObjectChecksumIsTheWholeCRC(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	data := make([]byte, 100_003)
	rng.Read(data)
	cuts := []int{0, 1, 40_000, 40_001, 99_000, len(data)}
	enc32 := func(v uint32) string {
		b := binary.BigEndian.AppendUint32(nil, v)
		return base64.StdEncoding.EncodeToString(b)
	}
	enc64 := func(v uint64) string {
		b := binary.BigEndian.AppendUint64(nil, v)
		return base64.StdEncoding.EncodeToString(b)
	}
	nvme := crc64.MakeTable(0x9a6c9329ac4bc9b5)
	sum := map[string]func([]byte) string{
		"CRC32":     func(b []byte) string { return enc32(crc32.ChecksumIEEE(b)) },
		"CRC32C":    func(b []byte) string { return enc32(crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))) },
		"CRC64NVME": func(b []byte) string { return enc64(crc64.Checksum(b, nvme)) },
	}
	for alg, f := range sum {
		var parts []string
		var sizes []int64
		for i := 1; i < len(cuts); i++ {
			p := data[cuts[i-1]:cuts[i]]
			parts = append(parts, f(p))
			sizes = append(sizes, int64(len(p)))
		}
		got, ok := fullObjectChecksum(alg, parts, sizes)
		if !ok || got != f(data) {
			t.Errorf("%s: combined %s (%v), whole %s", alg, got, ok, f(data))
		}
	}
}
