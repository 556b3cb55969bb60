package rdbvalue

import "encoding/binary"

// lzfMaxRatio bounds the output of LZF per input byte: the longest back
// reference is 3 input bytes for 264 output bytes (88 per byte).
const lzfMaxRatio = 88

// lzfDecompress decompresses in into out, which must be exactly the
// declared uncompressed size. It never reads or writes out of bounds and
// reports whether in was valid and filled out exactly.
func lzfDecompress(in, out []byte) bool {
	ip, op := 0, 0
	le := binary.LittleEndian
	for ip < len(in) {
		ctrl := int(in[ip])
		ip++
		if ctrl < 32 { // literal run of ctrl+1 bytes
			n := ctrl + 1
			if n > len(in)-ip || n > len(out)-op {
				return false
			}
			if len(in)-ip >= 32 && len(out)-op >= 32 {
				// Copy 32 bytes with word moves (the excess is
				// overwritten later or lies within out).
				s, d := in[ip:ip+32], out[op:op+32]
				le.PutUint64(d, le.Uint64(s))
				le.PutUint64(d[8:], le.Uint64(s[8:]))
				le.PutUint64(d[16:], le.Uint64(s[16:]))
				le.PutUint64(d[24:], le.Uint64(s[24:]))
			} else {
				copy(out[op:op+n], in[ip:ip+n])
			}
			ip += n
			op += n
			continue
		}
		n := ctrl >> 5
		ref := op - (ctrl&0x1f)<<8 - 1
		if n == 7 {
			if ip >= len(in) {
				return false
			}
			n += int(in[ip])
			ip++
		}
		if ip >= len(in) {
			return false
		}
		ref -= int(in[ip])
		ip++
		n += 2
		if ref < 0 || n > len(out)-op {
			return false
		}
		if n <= 16 && op-ref >= 8 && len(out)-op >= 16 {
			// Short back reference at distance >= 8: two word moves
			// (each 8-byte source lies before its destination).
			le.PutUint64(out[op:], le.Uint64(out[ref:]))
			le.PutUint64(out[op+8:], le.Uint64(out[ref+8:]))
			op += n
			continue
		}
		// The source may overlap the destination (a repeating pattern):
		// copy what is already there, doubling each time.
		for n > 0 {
			k := min(n, op-ref)
			copy(out[op:op+k], out[ref:ref+k])
			op += k
			n -= k
		}
	}
	return op == len(out)
}
