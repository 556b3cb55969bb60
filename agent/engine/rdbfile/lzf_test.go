package rdbfile

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/redback-dev/redback/agent/engine/rdbvalue"
)

// lzfCompress is a plain greedy LZF compressor for the tests (literal runs
// of up to 32 bytes, back references of 3 to 264 bytes up to 8 KiB back).
func lzfCompress(in []byte) []byte {
	var out, lit []byte
	flushLit := func() {
		for len(lit) > 0 {
			n := min(32, len(lit))
			out = append(out, byte(n-1))
			out = append(out, lit[:n]...)
			lit = lit[n:]
		}
	}
	table := map[[3]byte]int{}
	for i := 0; i < len(in); {
		if i+3 <= len(in) {
			key := [3]byte{in[i], in[i+1], in[i+2]}
			if j, ok := table[key]; ok && i-j <= rdbvalue.LZFWindow {
				l := 0
				for i+l < len(in) && in[j+l] == in[i+l] && l < 264 {
					l++
				}
				flushLit()
				off, n := i-j-1, l-2
				if n < 7 {
					out = append(out, byte(n<<5|off>>8), byte(off))
				} else {
					out = append(out, byte(7<<5|off>>8), byte(n-7), byte(off))
				}
				for k := i; k < i+l && k+3 <= len(in); k++ {
					table[[3]byte{in[k], in[k+1], in[k+2]}] = k
				}
				i += l
				continue
			}
			table[key] = i
		}
		lit = append(lit, in[i])
		i++
	}
	flushLit()
	return out
}

// TestLZF: LZF strings decompress the same whole (elements, blobs) and
// streamed (string values) in pieces of any size.
func TestLZF(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for iter := range 40 {
		n := []int{1, 10, 300, 8191, 8192, 8193, 20000, 100_000 + rng.IntN(100_000)}[iter%8]
		in := make([]byte, n)
		period := 1 + rng.IntN(9000)
		for i := range in {
			if i >= period && rng.IntN(20) != 0 {
				in[i] = in[i-period]
			} else {
				in[i] = byte(rng.IntN(8))
			}
		}
		c := lzfCompress(in)
		out := make([]byte, n)
		if !rdbvalue.LZFDecompress(c, out) || !bytes.Equal(out, in) {
			t.Fatalf("n=%d: whole decompression differs", n)
		}
		v := append([]byte{0xc3}, appendLen(appendLen(nil, uint64(len(c))), uint64(n))...)
		v = append(v, c...)
		elem := append(appendLen(nil, 1), v...)
		data := newBuilder("REDIS0011").selectDB(0).key(tString, "s", v).key(tList, "l", elem).eof(true)
		piece := []int{1, 7, 4096, 8192, 1 << 20}[rng.IntN(5)]
		m, err := collect(bytes.NewReader(data), collectOpts{Options: Options{MaxChunkBytes: piece}})
		if err != nil {
			t.Fatalf("n=%d piece %d: %v", n, piece, err)
		}
		if s := m.Keys[keyID{0, "s"}]; !bytes.Equal(s.Str, in) {
			t.Fatalf("n=%d piece %d: streamed decompression differs", n, piece)
		}
		if l := m.Keys[keyID{0, "l"}]; len(l.List) != 1 || l.List[0] != string(in) {
			t.Fatalf("n=%d: element decompression differs", n)
		}
		// one byte less of output than declared, or more: corrupt
		for _, ulen := range []int{n - 1, n + 1} {
			if ulen <= 0 {
				continue
			}
			bad := append([]byte{0xc3}, appendLen(appendLen(nil, uint64(len(c))), uint64(ulen))...)
			bad = append(bad, c...)
			data := newBuilder("REDIS0011").selectDB(0).key(tString, "s", bad).eof(true)
			if _, err := collect(bytes.NewReader(data), collectOpts{}); err == nil {
				t.Fatalf("n=%d declared %d: no error", n, ulen)
			}
		}
	}
}

func TestCRC64AndModuleName(t *testing.T) {
	if got := rdbvalue.CRC64(0, []byte("123456789")); got != 0xe9c6d914c4b8d9ca {
		t.Errorf("CRC64 check value %x", got)
	}
	if got := ModuleName(moduleID("vectorset", 0)); got != "vectorset" {
		t.Errorf("ModuleName %q", got)
	}
}
