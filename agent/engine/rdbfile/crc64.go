package rdbfile

import "encoding/binary"

// CRC-64/Jones as Redis computes it (src/crc64.c): reflected polynomial
// 0x95ac9329ac4bc9b5, initial value 0, no final xor. Slicing-by-8.
var crcTable = func() *[8][256]uint64 {
	const poly = 0x95ac9329ac4bc9b5
	t := new([8][256]uint64)
	for i := range 256 {
		c := uint64(i)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ poly
			} else {
				c >>= 1
			}
		}
		t[0][i] = c
	}
	for i := range 256 {
		c := t[0][i]
		for k := 1; k < 8; k++ {
			c = t[0][byte(c)] ^ c>>8
			t[k][i] = c
		}
	}
	return t
}()

// CRC64 continues the Redis CRC-64 crc over p; start with 0. The CRC of
// an RDB file covers everything before its 8-byte trailer, that of a DUMP
// payload everything before its last 8 bytes.
func CRC64(crc uint64, p []byte) uint64 {
	t := crcTable
	for len(p) >= 8 {
		crc ^= binary.LittleEndian.Uint64(p)
		crc = t[7][byte(crc)] ^ t[6][byte(crc>>8)] ^ t[5][byte(crc>>16)] ^ t[4][byte(crc>>24)] ^
			t[3][byte(crc>>32)] ^ t[2][byte(crc>>40)] ^ t[1][byte(crc>>48)] ^ t[0][byte(crc>>56)]
		p = p[8:]
	}
	for _, b := range p {
		crc = t[0][byte(crc)^b] ^ crc>>8
	}
	return crc
}

// AppendDumpFooter turns a serialized value (the concatenated RawChunk
// data of a key: its type byte then its value) into a DUMP payload that
// RESTORE accepts: it appends the 2-byte RDB version (little endian) and
// the CRC-64 of everything before it, to payload in place (as append
// does). rdbVersion is Header().Version of the file the value came from;
// a server accepts it when it is at most its own RDB version.
func AppendDumpFooter(payload []byte, rdbVersion int) []byte {
	payload = binary.LittleEndian.AppendUint16(payload, uint16(rdbVersion))
	return binary.LittleEndian.AppendUint64(payload, CRC64(0, payload))
}
