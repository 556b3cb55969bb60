package rdbvalue

// lzfMaxRatio bounds the output of LZF per input byte: the longest back
// reference is 3 input bytes for 264 output bytes (88 per byte).
const lzfMaxRatio = 88

// lzfDecompress decompresses in into out, which must be exactly the
// declared uncompressed size. It never reads or writes out of bounds.
func lzfDecompress(in, out []byte) bool {
	ip, op := 0, 0
	for ip < len(in) {
		ctrl := int(in[ip])
		ip++
		if ctrl < 32 { // literal run of ctrl+1 bytes
			n := ctrl + 1
			if n > len(in)-ip || n > len(out)-op {
				return false
			}
			copy(out[op:op+n], in[ip:ip+n])
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
