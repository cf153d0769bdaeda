package engine

import (
	"encoding/base64"
	"encoding/binary"
)

// Full-object checksums of multipart uploads (x-amz-checksum-type: FULL_OBJECT): the CRC of the
// whole object, computed from the parts' CRCs and sizes without reading the data again, by
// the CRC combination that zlib's crc32_combine uses, for any reflected CRC whose initial and
// final values are all ones (CRC32, CRC32C, CRC64NVME are).

// reflectedPolys are the algorithms a full-object checksum may use, with their reflected
// polynomial and width in bits.
var reflectedPolys = map[string]struct {
	poly uint64
	bits int
}{
	"CRC32":     {0xedb88320, 32},
	"CRC32C":    {0x82f63b78, 32},
	"CRC64NVME": {0x9a6c9329ac4bc9b5, 64},
}

// FullObjectAlgorithm reports whether alg can be a multipart upload's full-object checksum.
func FullObjectAlgorithm(alg string) bool { _, ok := reflectedPolys[alg]; return ok }

func gf2Times(mat []uint64, vec uint64) uint64 {
	var sum uint64
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= mat[i]
		}
	}
	return sum
}

func gf2Square(square, mat []uint64) {
	for n := range mat {
		square[n] = gf2Times(mat, mat[n])
	}
}

// crcCombine returns the CRC of A‖B from crc(A), crc(B) and len(B).
func crcCombine(poly uint64, bits int, crc1, crc2 uint64, len2 int64) uint64 {
	if len2 <= 0 {
		return crc1
	}
	even, odd := make([]uint64, bits), make([]uint64, bits)
	odd[0] = poly // the operator for one zero bit
	row := uint64(1)
	for n := 1; n < bits; n++ {
		odd[n] = row
		row <<= 1
	}
	gf2Square(even, odd) // two zero bits
	gf2Square(odd, even) // four
	for {
		gf2Square(even, odd) // one zero byte, then 4, 16, ...
		if len2&1 != 0 {
			crc1 = gf2Times(even, crc1)
		}
		len2 >>= 1
		if len2 == 0 {
			break
		}
		gf2Square(odd, even)
		if len2&1 != 0 {
			crc1 = gf2Times(odd, crc1)
		}
		len2 >>= 1
		if len2 == 0 {
			break
		}
	}
	return crc1 ^ crc2
}

// fullObjectChecksum combines the parts' checksums (base64, big-endian, as S3 sends them) into
// the whole object's.
func fullObjectChecksum(alg string, parts []string, sizes []int64) (string, bool) {
	p, ok := reflectedPolys[alg]
	if !ok || len(parts) == 0 || len(parts) != len(sizes) {
		return "", false
	}
	var crc uint64
	for i, v := range parts {
		raw, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(raw) != p.bits/8 {
			return "", false
		}
		var c uint64
		if p.bits == 32 {
			c = uint64(binary.BigEndian.Uint32(raw))
		} else {
			c = binary.BigEndian.Uint64(raw)
		}
		if i == 0 {
			crc = c
		} else {
			crc = crcCombine(p.poly, p.bits, crc, c, sizes[i])
		}
	}
	out := make([]byte, p.bits/8)
	if p.bits == 32 {
		binary.BigEndian.PutUint32(out, uint32(crc))
	} else {
		binary.BigEndian.PutUint64(out, crc)
	}
	return base64.StdEncoding.EncodeToString(out), true
}

// FullObjectChecksum is fullObjectChecksum for the gateway, which checks a client's expected
// value against the parts it names before completing.
func FullObjectChecksum(alg string, parts []string, sizes []int64) (string, bool) {
	return fullObjectChecksum(alg, parts, sizes)
}
