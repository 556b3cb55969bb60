package rdbvalue

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"
)

// randomLZF returns valid LZF data of random instructions (literal runs,
// short and long back references, overlapping or not) and its output,
// produced byte by byte.
func randomLZF(rng *rand.Rand, instrs int) (in, out []byte) {
	for range instrs {
		if len(out) == 0 || rng.IntN(3) == 0 {
			n := 1 + rng.IntN(32)
			in = append(in, byte(n-1))
			for range n {
				c := byte(rng.IntN(4))
				in = append(in, c)
				out = append(out, c)
			}
			continue
		}
		dist := 1 + rng.IntN(min(len(out), LZFWindow))
		n := 3 + rng.IntN(LZFMaxInstrOut-2)
		off := dist - 1
		if n-2 < 7 {
			in = append(in, byte((n-2)<<5|off>>8), byte(off))
		} else {
			in = append(in, byte(7<<5|off>>8), byte(n-2-7), byte(off))
		}
		for range n {
			out = append(out, out[len(out)-dist])
		}
	}
	return in, out
}

// TestLZFDecodePieces: decoding in pieces of input and of output room, as
// a streaming reader does, gives what decoding whole gives.
func TestLZFDecodePieces(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for iter := range 300 {
		in, want := randomLZF(rng, 1+rng.IntN(200))
		got := make([]byte, len(want))
		if !LZFDecompress(in, got) || !bytes.Equal(got, want) {
			t.Fatalf("iter %d: whole decompression differs", iter)
		}
		out := make([]byte, len(want))
		ip, op := 0, 0
		for ip < len(in) {
			inEnd := min(len(in), ip+1+rng.IntN(2*LZFMaxInstrIn))
			outEnd := min(len(out), op+LZFMaxInstrOut+rng.IntN(300))
			used, end, ok := LZFDecode(in[ip:inEnd], out[:outEnd], op)
			if !ok || end < op || end > outEnd {
				t.Fatalf("iter %d: ok %v, end %d of %d..%d", iter, ok, end, op, outEnd)
			}
			if used == 0 && inEnd-ip >= LZFMaxInstrIn && outEnd-op >= LZFMaxInstrOut {
				t.Fatalf("iter %d: no progress with room for an instruction", iter)
			}
			ip, op = ip+used, end
		}
		if op != len(want) || !bytes.Equal(out, want) {
			t.Fatalf("iter %d: decoding in pieces differs", iter)
		}
	}
}

func TestLZFLengthsOK(t *testing.T) {
	for _, c := range []struct {
		clen, ulen uint64
		ok         bool
	}{
		{1, 1, true}, {0, 1, false}, {1, 0, false}, {3, 264, true}, {3, 265, false},
		{math.MaxUint64, math.MaxUint64, true}, {math.MaxUint64 / 88, math.MaxUint64, false},
	} {
		if got := LZFLengthsOK(c.clen, c.ulen); got != c.ok {
			t.Errorf("LZFLengthsOK(%d, %d) = %v", c.clen, c.ulen, got)
		}
	}
}
