package rdbvalue

import (
	"encoding/binary"
	"math"
)

// LZF, as Redis compresses strings and compact encodings (src/lzf_d.c).
// The data is a sequence of instructions: a control byte below 32 is a
// literal run of ctrl+1 bytes that follow; any other is a back reference
// of ctrl>>5 + 2 bytes (when ctrl>>5 is 7, plus the next byte), starting
// (ctrl&31)<<8 + the next byte + 1 bytes back in the output.

const (
	// LZFWindow is how far back in the output a back reference reaches.
	LZFWindow = 8192
	// LZFMaxInstrIn is the most input bytes one instruction takes (a
	// 32-byte literal run and its control byte).
	LZFMaxInstrIn = 33
	// LZFMaxInstrOut is the most output bytes one instruction yields (the
	// longest back reference).
	LZFMaxInstrOut = 264
	// lzfMaxRatio bounds the output per input byte: the longest back
	// reference takes 3 input bytes.
	lzfMaxRatio = LZFMaxInstrOut / 3
)

// LZFLengthsOK reports whether clen compressed bytes can decompress to
// ulen bytes: both are non-zero and ulen is at most 88 times clen. Check
// the lengths an RDB string declares with it before they size anything.
func LZFLengthsOK(clen, ulen uint64) bool {
	return clen != 0 && ulen != 0 &&
		(clen > math.MaxUint64/lzfMaxRatio || ulen <= clen*lzfMaxRatio)
}

// LZFDecompress decompresses in into out, which must have exactly the
// declared uncompressed size. It reports whether in was valid LZF data
// that filled out exactly; when not, out holds junk.
func LZFDecompress(in, out []byte) bool {
	ip, op, ok := LZFDecode(in, out, 0)
	return ok && ip == len(in) && op == len(out)
}

// LZFDecode decompresses a prefix of in into out[op:], for callers that
// get the input or make room for the output in pieces. out[:op] is the
// output so far: back references reach into it, so it must hold at least
// its last LZFWindow bytes (all of it when shorter). LZFDecode stops at
// the end of in, before an instruction that in holds only in part, or
// before one whose output does not fit in out; it returns how many bytes
// of in it used (whole instructions) and the new end of the output. ok is
// false when an instruction refers to before out[0] (corrupt data).
//
// It never reads or writes outside in and out. It reads out[:op] and
// writes out[op:], where it may leave junk beyond the returned end.
func LZFDecode(in, out []byte, op int) (ip, end int, ok bool) {
	le := binary.LittleEndian
	for ip < len(in) {
		ctrl := int(in[ip])
		if ctrl < 32 { // literal run of ctrl+1 bytes
			n := ctrl + 1
			s := ip + 1
			if n > len(in)-s || n > len(out)-op {
				return ip, op, true
			}
			if len(in)-s >= 32 && len(out)-op >= 32 {
				// Copy 32 bytes with word moves (the excess is
				// overwritten later or lies within out).
				src, dst := in[s:s+32], out[op:op+32]
				le.PutUint64(dst, le.Uint64(src))
				le.PutUint64(dst[8:], le.Uint64(src[8:]))
				le.PutUint64(dst[16:], le.Uint64(src[16:]))
				le.PutUint64(dst[24:], le.Uint64(src[24:]))
			} else {
				copy(out[op:op+n], in[s:s+n])
			}
			ip = s + n
			op += n
			continue
		}
		n, hdr := ctrl>>5, 2
		if n == 7 {
			hdr = 3
		}
		if hdr > len(in)-ip {
			return ip, op, true
		}
		if n == 7 {
			n += int(in[ip+1])
		}
		n += 2
		ref := op - (ctrl&0x1f)<<8 - int(in[ip+hdr-1]) - 1
		if ref < 0 {
			return ip, op, false
		}
		if n > len(out)-op {
			return ip, op, true
		}
		ip += hdr
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
	return ip, op, true
}
