package rdbfile

import (
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/redback-dev/redback/internal/redistest"
)

// TestMemoryBounded saves a file with big keys (a 4-million-element list,
// a 300k-field hash, a 40 MiB string that LZF compresses to little, a 16
// MiB incompressible string) and reads it, parsed then raw, sampling the
// heap: it must stay small whatever the keys' sizes.
func TestMemoryBounded(t *testing.T) {
	const (
		listLen  = 4_000_000
		hashLen  = 300_000
		zeroLen  = 40 << 20
		randLen  = 16 << 20
		heapCap  = 64 << 20
		sampleEv = 16
	)
	s := redistest.StartServer(t, "redis-7.0")
	c := s.Client(t, 0)
	start := time.Now()
	// Scripts of 100 thousand elements each: one script of millions can
	// outlast the client's read timeout on a loaded machine (the retry
	// then meets BUSY).
	for first := 0; first < listLen/1000; first += 100 {
		do(t, c, "EVAL", `for i = ARGV[1], ARGV[1] + 99 do
		local t = {}
		for j = 1, 1000 do t[j] = 'element-' .. (i * 1000 + j) end
		redis.call('RPUSH', KEYS[1], unpack(t))
	end`, 1, "biglist", first)
	}
	for first := 0; first < hashLen/1000; first += 100 {
		do(t, c, "EVAL", `for i = ARGV[1], ARGV[1] + 99 do
		local t = {}
		for j = 1, 1000 do t[2*j-1] = 'f' .. (i * 1000 + j); t[2*j] = 'v' .. j end
		redis.call('HSET', KEYS[1], unpack(t))
	end`, 1, "bighash", first)
	}
	do(t, c, "SETRANGE", "zeros", zeroLen-1, "x")
	rng := rand.New(rand.NewPCG(3, 4))
	piece := make([]byte, 1<<20)
	randHash := fnv.New64a()
	for range randLen / len(piece) {
		for i := range piece {
			piece[i] = byte(rng.Uint32())
		}
		randHash.Write(piece)
		do(t, c, "APPEND", "random", piece)
	}
	do(t, c, "SAVE")
	path := filepath.Join(s.Dir, "dump.rdb")
	st, err := os.Stat(path)
	must(t, err)
	t.Logf("filled and saved in %v: file of %d MiB", time.Since(start).Round(time.Millisecond), st.Size()>>20)
	s.Stop() // its memory is not ours, but the machine's

	wantList := fnv.New64a()
	for i := 1; i <= listLen; i++ {
		wantList.Write([]byte("element-" + strconv.Itoa(i)))
	}

	for _, raw := range []bool{false, true} {
		f, err := os.Open(path)
		must(t, err)
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base, alloc0 := ms.HeapInuse, ms.TotalAlloc
		var peak uint64
		r, err := NewReader(f, Options{MaxChunkElems: 256, MaxChunkBytes: 64 << 10})
		must(t, err)
		listHash, strHash := fnv.New64a(), fnv.New64a()
		var cur string
		var nList, nHash, nZero, nRaw int64
		zerosOK := true
		events := 0
		t0 := time.Now()
		for {
			ev, err := r.Next()
			if err == io.EOF {
				break
			}
			must(t, err)
			if events++; events%sampleEv == 0 {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
			switch e := ev.(type) {
			case *KeyStart:
				cur = string(e.Key)
				if raw {
					r.WantRaw()
				}
			case *Elements:
				for _, x := range e.Elems {
					listHash.Write(x)
				}
				nList += int64(len(e.Elems))
			case *HashChunk:
				nHash += int64(len(e.Fields))
			case *StringChunk:
				if cur == "random" {
					strHash.Write(e.Data)
				} else {
					for i, b := range e.Data {
						if b != 0 && !(b == 'x' && e.Offset+int64(i) == zeroLen-1) {
							zerosOK = false
						}
					}
					nZero += int64(len(e.Data))
				}
			case *RawChunk:
				nRaw += int64(len(e.Data))
			}
		}
		f.Close()
		dur := time.Since(t0)
		runtime.ReadMemStats(&ms)
		t.Logf("raw=%v: read in %v, %d events; heap in use: %d KiB before, peak %d KiB (+%d KiB); allocated %d MiB in all",
			raw, dur.Round(time.Millisecond), events, base>>10, peak>>10, (peak-base)>>10, (ms.TotalAlloc-alloc0)>>20)
		if peak > heapCap {
			t.Errorf("raw=%v: heap in use peaked at %d MiB, bound %d MiB", raw, peak>>20, heapCap>>20)
		}
		if raw {
			if nRaw < st.Size()-(1<<20) || nRaw > st.Size() {
				t.Errorf("raw bytes %d of a %d-byte file", nRaw, st.Size())
			}
			continue
		}
		if nList != listLen || listHash.Sum64() != wantList.Sum64() {
			t.Errorf("list: %d elements, hash %x, want %d, %x", nList, listHash.Sum64(), listLen, wantList.Sum64())
		}
		if nHash != hashLen {
			t.Errorf("hash: %d fields", nHash)
		}
		if nZero != zeroLen || !zerosOK {
			t.Errorf("zero string: %d bytes, content ok %v", nZero, zerosOK)
		}
		if strHash.Sum64() != randHash.Sum64() {
			t.Errorf("random string differs")
		}
		if r.seen.lzfStrings == 0 {
			t.Errorf("the zero string was not LZF-compressed")
		}
	}
}
