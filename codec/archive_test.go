package codec

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"
)

// allLayers are the four layer combinations of FORMAT.md.
var allLayers = []Layers{{}, {Gzip: true}, {Age: true}, {Gzip: true, Age: true}}

// archiveName is the storage name that announces l.
func archiveName(l Layers) string {
	n := "redis_backup_20231205_143022.json"
	if l.Gzip {
		n += ".gz"
	}
	if l.Age {
		n += ".age"
	}
	return n
}

// archiveHeader is the header the tests write.
var archiveHeader = Header{CreatedAt: fixedTime, Source: Source{RedisVersion: "7.2.4", Role: "master", Mode: "standalone",
	Databases: []int{0, 1, 3, 15, 16}, Server: "redis", ServerVersion: "7.2.4", RDBVersion: 11}}

// randomBlob returns n bytes that do not compress.
func randomBlob(rng *rand.Rand, n int) []byte {
	b := make([]byte, (n+7)/8*8)
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], rng.Uint64())
	}
	b[0] = 0 // binary: written in base64
	return b[:n]
}

// archiveKeys returns random keys (genData's) followed, in database 16,
// by incompressible string values of blob bytes in all, so that even the
// gzip layer's output crosses the storage buffer's size.
func archiveKeys(rng *rand.Rand, n int, big bool, blob int) []genKey {
	keys := genData(rng, n, big)
	for i := 0; blob > 0; i++ {
		sz := min(blob, 200<<10+rng.IntN(300<<10))
		blob -= sz
		k := genKey{h: KeyHeader{DB: 16, Key: fmt.Appendf(nil, "blob:%d", i), Type: TypeString}, str: randomBlob(rng, sz)}
		if i%2 == 1 {
			k.parts = 1 + rng.IntN(100<<10)
			k.h.StringBase64 = true
		}
		keys = append(keys, k)
	}
	return keys
}

// perDB counts keys by database, as a Trailer does.
func perDB(keys []genKey) map[int]int64 {
	m := map[int]int64{}
	for _, k := range keys {
		m[k.h.DB]++
	}
	return m
}

// store is a storage writer: it keeps every byte and the size of every
// write, and fails once more than limit bytes were asked for (limit < 0:
// never).
type store struct {
	mu     sync.Mutex
	data   []byte
	writes []int
	limit  int
	closed bool
}

var errSink = errors.New("sink: disk quota exceeded")

func (s *store) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes = append(s.writes, len(p))
	if s.limit >= 0 && len(s.data)+len(p) > s.limit {
		n := s.limit - len(s.data)
		s.data = append(s.data, p[:n]...)
		return n, fmt.Errorf("put part: %w", errSink)
	}
	s.data = append(s.data, p...)
	return len(p), nil
}

func (s *store) Close() error { s.closed = true; return nil }

func (s *store) nWrites() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.writes)
}

type testKeys struct {
	id, other *age.X25519Identity
}

func newTestKeys(t *testing.T) testKeys {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	other, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return testKeys{id, other}
}

func (k testKeys) encode(l Layers) EncodeOptions {
	o := EncodeOptions{Gzip: l.Gzip}
	if l.Age {
		o.Recipients = []age.Recipient{k.id.Recipient()}
	}
	return o
}

func (k testKeys) decode() DecodeOptions {
	return DecodeOptions{Identities: []age.Identity{k.other, k.id}}
}

// createArchive writes keys through Create into a store.
func createArchive(t *testing.T, keys []genKey, o EncodeOptions) (*store, Trailer, int64) {
	t.Helper()
	s := &store{limit: -1}
	aw, err := Create(s, archiveHeader, o)
	if err != nil {
		t.Fatal(err)
	}
	defer aw.Abort()
	writeKeys(t, aw, keys)
	tr, err := aw.Close()
	if err != nil {
		t.Fatal(err)
	}
	return s, tr, aw.BytesWritten()
}

// settle waits until no more goroutines run than base.
func settle(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines run, %d before: one was not released\n%s", runtime.NumGoroutine(), base, buf)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestArchiveRoundTrip writes random archives through Create in each layer
// combination and reads them back through Open: the keys, header and
// trailer survive, the layers asked for are the layers found, the JSON
// crosses the pipe's buffers and the stored object the storage buffer,
// storage gets only large writes, and dst is not closed.
func TestArchiveRoundTrip(t *testing.T) {
	k := newTestKeys(t)
	for seed := uint64(0); seed < 2; seed++ {
		rng := rand.New(rand.NewPCG(seed, 11))
		keys := archiveKeys(rng, 8, true, 1600<<10)
		for _, l := range allLayers {
			t.Run(fmt.Sprintf("seed%d/%s", seed, archiveName(l)), func(t *testing.T) {
				s, tr, jsonBytes := createArchive(t, keys, k.encode(l))
				if tr.KeysCount != int64(len(keys)) || !maps.Equal(tr.KeysPerDB, perDB(keys)) || len(tr.Checksum) != 64 {
					t.Fatalf("trailer %+v, want %d keys %v", tr, len(keys), perDB(keys))
				}
				if s.closed {
					t.Fatal("Close closed dst")
				}
				if jsonBytes <= pipeDepth*pipeBufSize || len(s.data) <= storeBufSize {
					t.Fatalf("test data too small: %d JSON bytes, %d stored", jsonBytes, len(s.data))
				}
				for i, n := range s.writes[:len(s.writes)-1] {
					if n < storeBufSize {
						t.Fatalf("write %d of %d to storage is of %d bytes", i, len(s.writes), n)
					}
				}
				// The layers were applied (found by content, not trusted
				// from the options), and the JSON is what BytesWritten says.
				plain, found, err := NewDecoder(bytes.NewReader(s.data), k.decode())
				if err != nil || found != l {
					t.Fatalf("NewDecoder: layers %+v, %v", found, err)
				}
				doc, err := io.ReadAll(plain)
				if err != nil || int64(len(doc)) != jsonBytes {
					t.Fatalf("plain JSON of %d bytes (%v), BytesWritten %d", len(doc), err, jsonBytes)
				}

				ar, err := Open(bytes.NewReader(s.data), archiveName(l), k.decode())
				if err != nil {
					t.Fatal(err)
				}
				if ar.Layers() != l {
					t.Fatalf("Layers %+v, want %+v", ar.Layers(), l)
				}
				h, got, rtr, err := readFrom(t, ar, ReaderOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if err := ar.Close(); err != nil {
					t.Fatal(err)
				}
				if h.FormatVersion != FormatVersion || !h.CreatedAt.Equal(fixedTime) || h.Source.RDBVersion != 11 || len(h.Source.Databases) != 5 {
					t.Fatalf("header %+v", h)
				}
				compareKeys(t, keys, got)
				if rtr.KeysCount != tr.KeysCount || !maps.Equal(rtr.KeysPerDB, tr.KeysPerDB) || rtr.Checksum != tr.Checksum || !rtr.Verified {
					t.Fatalf("read trailer %+v, written %+v", rtr, tr)
				}
			})
		}
	}
}

// TestArchiveClose checks Close's trailer on small and empty archives,
// that a second Close gives the same result, and that the writer refuses
// keys after Close.
func TestArchiveClose(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, keys := range [][]genKey{nil, genData(rng, 5, false)} {
		for _, o := range []EncodeOptions{{}, {Gzip: true, GzipLevel: 9}} {
			s := &store{limit: -1}
			aw, err := Create(s, archiveHeader, o)
			if err != nil {
				t.Fatal(err)
			}
			writeKeys(t, aw, keys)
			if aw.Keys() != int64(len(keys)) {
				t.Fatalf("Keys %d, want %d", aw.Keys(), len(keys))
			}
			tr, err := aw.Close()
			if err != nil {
				t.Fatal(err)
			}
			if tr.KeysCount != int64(len(keys)) || !maps.Equal(tr.KeysPerDB, perDB(keys)) || tr.CompletedAt.IsZero() {
				t.Fatalf("trailer %+v, want %d keys %v", tr, len(keys), perDB(keys))
			}
			tr2, err := aw.Close()
			if err != nil || tr2.Checksum != tr.Checksum || tr2.KeysCount != tr.KeysCount {
				t.Fatalf("second Close: %+v, %v", tr2, err)
			}
			aw.Abort() // after Close: nothing
			if _, err := aw.Close(); err != nil {
				t.Fatalf("Close after Close and Abort: %v", err)
			}
			if err := aw.BeginKey(KeyHeader{DB: 20, Key: []byte("late"), Type: TypeString}); err == nil {
				t.Fatal("BeginKey after Close succeeded")
			}
			name := archiveName(Layers{Gzip: o.Gzip})
			ar, err := Open(bytes.NewReader(s.data), name, DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_, got, rtr, err := readFrom(t, ar, ReaderOptions{})
			if err != nil || rtr.Checksum != tr.Checksum {
				t.Fatalf("read back: %v, trailer %+v", err, rtr)
			}
			compareKeys(t, keys, got)
			ar.Close()
		}
	}
}

// TestArchiveSinkError fails the storage writer after N bytes, for N
// random across the object (and its first and last bytes): the error
// comes out of a write or of Close, errors.Is finds the sink's error, and
// no goroutine stays behind.
func TestArchiveSinkError(t *testing.T) {
	k := newTestKeys(t)
	base := runtime.NumGoroutine()
	rng := rand.New(rand.NewPCG(5, 6))
	keys := archiveKeys(rng, 6, false, 1200<<10)
	for _, l := range allLayers {
		full, _, _ := createArchive(t, keys, k.encode(l))
		size := len(full.data) - 256 // gzip's output varies by a few bytes with completed_at
		limits := []int{0, 1, size}
		for i := 0; i < 6; i++ {
			limits = append(limits, rng.IntN(size))
		}
		for _, n := range limits {
			s := &store{limit: n}
			aw, err := Create(s, archiveHeader, k.encode(l))
			if err != nil {
				t.Fatal(err)
			}
			var werr error
			for _, key := range keys {
				if werr = writeKey(aw, key); werr != nil {
					break
				}
			}
			if werr != nil && !errors.Is(werr, errSink) {
				t.Fatalf("%s, fail after %d: write error %v does not wrap the sink's", archiveName(l), n, werr)
			}
			_, cerr := aw.Close()
			if !errors.Is(cerr, errSink) {
				t.Fatalf("%s, fail after %d of %d bytes: Close returned %v (write error %v)", archiveName(l), n, len(full.data), cerr, werr)
			}
			aw.Abort()
			if _, again := aw.Close(); !errors.Is(again, errSink) {
				t.Fatalf("second Close: %v", again)
			}
		}
	}
	settle(t, base)
}

// TestArchiveNameMismatch opens each archive under each name: only the
// name that announces its layers (or no name) is accepted; the others are
// refused as corrupt before any parsing.
func TestArchiveNameMismatch(t *testing.T) {
	k := newTestKeys(t)
	keys := genData(rand.New(rand.NewPCG(7, 8)), 3, false)
	for _, l := range allLayers {
		s, _, _ := createArchive(t, keys, k.encode(l))
		for _, named := range allLayers {
			name := archiveName(named)
			ar, err := Open(bytes.NewReader(s.data), name, k.decode())
			if named == l {
				if err != nil {
					t.Fatalf("%v content as %s: %v", l, name, err)
				}
				ar.Close()
				continue
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "does not match its name") || !strings.Contains(err.Error(), name) {
				t.Fatalf("%+v content as %s: %v", l, name, err)
			}
		}
		ar, err := Open(bytes.NewReader(s.data), "", k.decode())
		if err != nil {
			t.Fatalf("no name: %v", err)
		}
		if _, _, _, err := readFrom(t, ar, ReaderOptions{}); err != nil || ar.Layers() != l {
			t.Fatalf("no name: layers %+v, %v", ar.Layers(), err)
		}
		ar.Close()
	}
}

// TestArchiveTruncated cuts each archive at random places: Open or the
// reading fails with ErrCorrupt, never reaches io.EOF.
func TestArchiveTruncated(t *testing.T) {
	k := newTestKeys(t)
	base := runtime.NumGoroutine()
	rng := rand.New(rand.NewPCG(9, 10))
	keys := archiveKeys(rng, 6, false, 700<<10)
	for _, l := range allLayers {
		s, _, _ := createArchive(t, keys, k.encode(l))
		// A plain document still ends after its last '}' without the
		// final line break; every other layer checks its end.
		last := len(s.data) - 1
		if l == (Layers{}) {
			last--
		}
		cuts := []int{0, 1, last}
		for i := 0; i < 8; i++ {
			cuts = append(cuts, rng.IntN(last))
		}
		for _, cut := range cuts {
			ar, err := Open(bytes.NewReader(s.data[:cut]), archiveName(l), k.decode())
			if err == nil {
				_, _, _, err = readFrom(t, ar, ReaderOptions{})
				if cerr := ar.Close(); cerr != nil {
					t.Fatalf("Close after an error: %v", cerr)
				}
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s cut at %d of %d: %v", archiveName(l), cut, len(s.data), err)
			}
		}
	}
	settle(t, base)
}

// chunkyReader returns data in reads of random sizes.
type chunkyReader struct {
	data []byte
	rng  *rand.Rand
}

func (c *chunkyReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 1+c.rng.IntN(100<<10))], c.data)
	c.data = c.data[n:]
	return n, nil
}

// TestArchiveCloseDrains reads archives through a SHA-256 tee: once Next
// returned io.EOF and Close returned, the hash is that of the whole
// stored object. A source that yields bytes after the end of the layers is
// refused.
func TestArchiveCloseDrains(t *testing.T) {
	k := newTestKeys(t)
	rng := rand.New(rand.NewPCG(12, 13))
	keys := archiveKeys(rng, 6, false, 400<<10)
	for _, l := range allLayers {
		s, _, _ := createArchive(t, keys, k.encode(l))
		h := sha256.New()
		ar, err := Open(io.TeeReader(&chunkyReader{s.data, rng}, h), archiveName(l), k.decode())
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := readFrom(t, ar, ReaderOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := ar.Close(); err != nil {
			t.Fatal(err)
		}
		if got, want := h.Sum(nil), sha256.Sum256(s.data); !bytes.Equal(got, want[:]) {
			t.Fatalf("%s: the hash around src is not that of the object", archiveName(l))
		}
		if err := ar.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}

		// A source that says EOF, then has more.
		ar, err = Open(&eofThenMore{data: s.data, more: []byte("junk")}, archiveName(l), k.decode())
		if err != nil {
			t.Fatal(err)
		}
		_, _, _, err = readFrom(t, ar, ReaderOptions{})
		if err == nil {
			err = ar.Close()
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: bytes after EOF: %v", archiveName(l), err)
		}
	}
}

// eofThenMore returns data, io.EOF once, then more.
type eofThenMore struct {
	data, more []byte
	eof        bool
}

func (e *eofThenMore) Read(p []byte) (int, error) {
	if len(e.data) > 0 {
		n := copy(p, e.data)
		e.data = e.data[n:]
		return n, nil
	}
	if !e.eof {
		e.eof = true
		return 0, io.EOF
	}
	if len(e.more) == 0 {
		return 0, io.EOF
	}
	n := copy(p, e.more)
	e.more = e.more[n:]
	return n, nil
}

// TestArchiveWrongKey: an archive for one key does not open with another
// (ErrWrongKey, wrapping age's error) nor without any (ErrEncrypted); Decrypt
// classifies alike and, with the right key, gives the archive without its
// age layer.
func TestArchiveWrongKey(t *testing.T) {
	k := newTestKeys(t)
	keys := genData(rand.New(rand.NewPCG(14, 15)), 4, false)
	for _, gz := range []bool{false, true} {
		l := Layers{Gzip: gz, Age: true}
		s, tr, _ := createArchive(t, keys, k.encode(l))
		name := archiveName(l)

		_, err := Open(bytes.NewReader(s.data), name, DecodeOptions{Identities: []age.Identity{k.other}})
		var nm *age.NoIdentityMatchError
		if !errors.Is(err, ErrWrongKey) || !errors.As(err, &nm) {
			t.Fatalf("Open, wrong key: %v", err)
		}
		if _, err := Open(bytes.NewReader(s.data), name, DecodeOptions{}); !errors.Is(err, ErrEncrypted) {
			t.Fatalf("Open, no key: %v", err)
		}

		if _, err := Decrypt(bytes.NewReader(s.data), []age.Identity{k.other}); !errors.Is(err, ErrWrongKey) || !errors.As(err, &nm) {
			t.Fatalf("Decrypt, wrong key: %v", err)
		}
		if _, err := Decrypt(bytes.NewReader(s.data), nil); !errors.Is(err, ErrEncrypted) {
			t.Fatalf("Decrypt, no key: %v", err)
		}
		dr, err := Decrypt(bytes.NewReader(s.data), []age.Identity{k.other, k.id})
		if err != nil {
			t.Fatal(err)
		}
		inner, err := io.ReadAll(dr)
		if err != nil {
			t.Fatal(err)
		}
		// What is left is the archive under its name without ".age".
		ar, err := Open(bytes.NewReader(inner), strings.TrimSuffix(name, ".age"), DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ar.Layers() != (Layers{Gzip: gz}) {
			t.Fatalf("decrypted layers %+v", ar.Layers())
		}
		_, got, rtr, err := readFrom(t, ar, ReaderOptions{})
		if err != nil || rtr.Checksum != tr.Checksum {
			t.Fatalf("decrypted archive: %v", err)
		}
		compareKeys(t, keys, got)
		ar.Close()

		// Damage and source errors are told apart.
		dr, err = Decrypt(bytes.NewReader(s.data[:len(s.data)-5]), []age.Identity{k.id})
		if err == nil {
			_, err = io.ReadAll(dr)
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Decrypt, truncated: %v", err)
		}
		boom := errors.New("connection reset")
		dr, err = Decrypt(io.MultiReader(bytes.NewReader(s.data[:len(s.data)/2]), errReader{boom}), []age.Identity{k.id})
		if err == nil {
			_, err = io.ReadAll(dr)
		}
		if !errors.Is(err, boom) || errors.Is(err, ErrCorrupt) {
			t.Fatalf("Decrypt, source error: %v", err)
		}
	}
	// Without an age layer there is nothing to decrypt.
	s, _, _ := createArchive(t, keys, EncodeOptions{Gzip: true})
	for _, src := range [][]byte{s.data, nil, []byte("age-encryption.org")} {
		_, err := Decrypt(bytes.NewReader(src), []age.Identity{k.id})
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "not age-encrypted") {
			t.Fatalf("Decrypt of %d bytes without age: %v", len(src), err)
		}
	}
}

// TestArchiveWriterAbort: Abort at any point releases the goroutine,
// touches dst no more, and fails every later call (without a panic, even
// when nothing was written yet).
func TestArchiveWriterAbort(t *testing.T) {
	k := newTestKeys(t)
	rng := rand.New(rand.NewPCG(16, 17))
	keys := archiveKeys(rng, 4, false, 1500<<10)
	createArchive(t, keys[:1], k.encode(Layers{Gzip: true, Age: true})) // warm up lazily started machinery
	base := runtime.NumGoroutine()
	for _, l := range allLayers {
		for _, upTo := range []int{0, 1, len(keys) / 2, len(keys)} {
			s := &store{limit: -1}
			aw, err := Create(s, archiveHeader, k.encode(l))
			if err != nil {
				t.Fatal(err)
			}
			writeKeys(t, aw, keys[:upTo])
			if upTo == len(keys) {
				if err := aw.BeginKey(KeyHeader{DB: 17, Key: []byte("open"), Type: TypeList}); err != nil {
					t.Fatal(err)
				}
			}
			aw.Abort()
			n := s.nWrites()
			if err := writeKey(aw, genKey{h: KeyHeader{DB: 20, Key: []byte("k"), Type: TypeString}, str: []byte("v")}); err == nil {
				t.Fatal("a write after Abort succeeded")
			}
			if _, err := aw.Close(); err == nil {
				t.Fatal("Close after Abort succeeded")
			}
			aw.Abort()
			settle(t, base)
			if s.nWrites() != n {
				t.Fatalf("dst written after Abort (%d writes, then %d)", n, s.nWrites())
			}
			if s.closed {
				t.Fatal("Abort closed dst")
			}
		}
	}
	// A failed Close (a key left open) releases as well.
	aw, err := Create(&store{limit: -1}, archiveHeader, EncodeOptions{Gzip: true})
	if err != nil {
		t.Fatal(err)
	}
	writeKeys(t, aw, keys)
	if err := aw.BeginKey(KeyHeader{DB: 17, Key: []byte("open"), Type: TypeSet}); err != nil {
		t.Fatal(err)
	}
	if _, err := aw.Close(); err == nil {
		t.Fatal("Close with a key open succeeded")
	}
	settle(t, base)
}

// TestArchiveReaderRelease: Close releases the read-ahead goroutine
// whether the archive was read whole, stopped early (the goroutine
// blocked on full buffers) or failed; it may be repeated; Next after it
// fails instead of hanging.
func TestArchiveReaderRelease(t *testing.T) {
	k := newTestKeys(t)
	rng := rand.New(rand.NewPCG(18, 19))
	keys := archiveKeys(rng, 4, false, 2<<20) // more than the pipe reads ahead
	archives := map[Layers][]byte{}
	for _, l := range allLayers {
		s, _, _ := createArchive(t, keys, k.encode(l))
		archives[l] = s.data
	}
	base := runtime.NumGoroutine()
	for _, l := range allLayers {
		data := archives[l]
		// Closed at once, after the header, after some chunks.
		for _, chunks := range []int{-1, 0, 3} {
			ar, err := Open(bytes.NewReader(data), archiveName(l), k.decode())
			if err != nil {
				t.Fatal(err)
			}
			if chunks >= 0 {
				if _, err := ar.Header(); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < chunks; i++ {
				c, err := ar.Next()
				if err != nil {
					t.Fatal(err)
				}
				ar.Release(c)
			}
			if err := ar.Close(); err != nil {
				t.Fatalf("Close of an archive read in part: %v", err)
			}
			if err := ar.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if _, err := ar.Next(); err == nil || err == io.EOF {
				t.Fatalf("Next after Close: %v", err)
			}
			h, err := ar.Header()
			if chunks >= 0 && (err != nil || h.Source.RDBVersion != 11) {
				t.Fatalf("Header after Close: %+v, %v", h, err)
			}
			if chunks < 0 && err == nil {
				t.Fatal("Header after Close read a closed pipe")
			}
		}
		// Failed: a byte flipped in the middle.
		ar, err := Open(bytes.NewReader(flip(data, len(data)/2)), archiveName(l), k.decode())
		if err == nil {
			_, _, _, err = readFrom(t, ar, ReaderOptions{})
			if cerr := ar.Close(); cerr != nil {
				t.Fatal(cerr)
			}
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s with a flipped byte: %v", archiveName(l), err)
		}
		settle(t, base)
	}
}

// stuckStore blocks its first write until released.
type stuckStore struct {
	store
	entered, release chan struct{}
	once             sync.Once
}

func (s *stuckStore) Write(p []byte) (int, error) {
	s.once.Do(func() {
		close(s.entered)
		<-s.release
	})
	return s.store.Write(p)
}

// TestArchiveWriterDecouplesStorage: while a write to storage hangs, the
// JSON encoding goes on into the pipe's buffers, well beyond what the
// storage buffer and the Writer's own buffer hold (it would stop at about
// storeBufSize plus writeBufSize if storage were written from the
// caller's goroutine).
func TestArchiveWriterDecouplesStorage(t *testing.T) {
	rng := rand.New(rand.NewPCG(20, 21))
	var keys []genKey
	for i := 0; i < 100; i++ { // ~4 MiB of JSON
		keys = append(keys, genKey{h: KeyHeader{Key: fmt.Appendf(nil, "k%d", i), Type: TypeString}, str: randomBlob(rng, 32<<10)})
	}
	s := &stuckStore{store: store{limit: -1}, entered: make(chan struct{}), release: make(chan struct{})}
	aw, err := Create(s, archiveHeader, EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var progress atomic.Int64
	werr := make(chan error, 1)
	go func() {
		for _, k := range keys {
			if err := writeKey(aw, k); err != nil {
				werr <- err
				return
			}
			progress.Store(aw.BytesWritten())
		}
		werr <- nil
	}()
	const want = storeBufSize + pipeDepth*pipeBufSize // less than the pipe takes, more than the buffers without it
	deadline := time.Now().Add(5 * time.Second)
	<-s.entered
	for progress.Load() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	got := progress.Load()
	close(s.release)
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	tr, err := aw.Close()
	if err != nil || tr.KeysCount != int64(len(keys)) {
		t.Fatalf("Close: %+v, %v", tr, err)
	}
	if got < want {
		t.Fatalf("with storage stuck the JSON encoding stopped at %d bytes, want at least %d", got, want)
	}
	ar, err := Open(bytes.NewReader(s.data), archiveName(Layers{}), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, rk, _, err := readFrom(t, ar, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	compareKeys(t, keys, rk)
	ar.Close()
}

// countingSource counts the bytes read from it (from any goroutine).
type countingSource struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingSource) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestArchiveReaderReadsAhead: once the header is parsed, the decoding
// goroutine goes on reading src into the pipe's buffers while the caller
// does nothing (without it, src would be read only as far as the Reader's
// and the decoder's buffers, about readBufSize plus 64 KiB).
func TestArchiveReaderReadsAhead(t *testing.T) {
	rng := rand.New(rand.NewPCG(22, 23))
	s, _, _ := createArchive(t, archiveKeys(rng, 2, false, 3<<20), EncodeOptions{})
	src := &countingSource{r: bytes.NewReader(s.data)}
	ar, err := Open(src, archiveName(Layers{}), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ar.Close()
	if _, err := ar.Header(); err != nil {
		t.Fatal(err)
	}
	const want = pipeDepth * pipeBufSize
	for deadline := time.Now().Add(5 * time.Second); src.n.Load() < want && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if got := src.n.Load(); got < want {
		t.Fatalf("after the header, %d bytes of src were read; the pipe reads ahead at least %d", got, want)
	}
}
