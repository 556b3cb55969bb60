package rdbvalue

import "encoding/binary"

// CRC-64/Jones as used by Redis (src/crc64.c): reflected, polynomial
// 0xad93d23594c935a9 (0x95ac9329ac4bc9b5 bit-reversed), initial value 0, no
// final xor. Check value: CRC("123456789") = 0xe9c6d914c4b8d9ca.
//
// hash/crc64 with crc64.MakeTable(0x95AC9329AC4BC9B5) computes the same
// polynomial but with init and xorout all ones; CRC64(0, p) equals
// ^crc64.Update(^uint64(0), tab, p). It is not used because hash/crc64 only
// uses slicing-by-8 for its two built-in tables (for other tables it is
// byte-at-a-time below 2 KiB and rebuilds a 16 KiB helper table on every
// larger call), so it is several times slower here.
const jonesPoly = 0x95ac9329ac4bc9b5

var crcTab = func() *[8][256]uint64 {
	t := new([8][256]uint64)
	for i := range 256 {
		c := uint64(i)
		for range 8 {
			if c&1 == 1 {
				c = c>>1 ^ jonesPoly
			} else {
				c >>= 1
			}
		}
		t[0][i] = c
	}
	for i := range 256 {
		c := t[0][i]
		for k := 1; k < 8; k++ {
			c = t[0][c&0xff] ^ c>>8
			t[k][i] = c
		}
	}
	return t
}()

// CRC64 continues the Redis CRC-64 crc over p; start with crc = 0, and
// feed the data in pieces of any size (CRC64(CRC64(0, a), b) is the CRC
// of a then b). The CRC of a DUMP payload covers everything before its
// last 8 bytes, that of an RDB file everything before its 8-byte trailer.
func CRC64(crc uint64, p []byte) uint64 {
	t := crcTab
	for len(p) >= 8 {
		crc ^= binary.LittleEndian.Uint64(p)
		crc = t[7][crc&0xff] ^
			t[6][crc>>8&0xff] ^
			t[5][crc>>16&0xff] ^
			t[4][crc>>24&0xff] ^
			t[3][crc>>32&0xff] ^
			t[2][crc>>40&0xff] ^
			t[1][crc>>48&0xff] ^
			t[0][crc>>56]
		p = p[8:]
	}
	for _, b := range p {
		crc = t[0][byte(crc)^b] ^ crc>>8
	}
	return crc
}
