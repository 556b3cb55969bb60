package rdbfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// Tests on the committed files of testdata/ (written by TestServers and
// TestClusterSlotInfo with -update) and on synthetic files; no server.

func testdataFiles(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.rdb"))
	must(t, err)
	if len(paths) < 7 {
		t.Fatalf("testdata holds %d .rdb files, want 7 (go test -run 'TestServers|TestClusterSlotInfo' -update)", len(paths))
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		must(t, err)
		out[strings.TrimSuffix(filepath.Base(p), ".rdb")] = b
	}
	return out
}

// testdataEncodings is what each committed file must hold.
var testdataEncodings = map[string][]string{
	"redis-7.0":  {"string", "quicklist2", "intset", "set", "zset-listpack", "zset2", "hash-listpack", "hash", "stream2"},
	"valkey-8.0": {"string", "quicklist2", "intset", "set", "set-listpack", "zset-listpack", "zset2", "hash-listpack", "hash", "stream3"},
	"valkey-8.1": {"string", "quicklist2", "intset", "set", "set-listpack", "zset-listpack", "zset2", "hash-listpack", "hash", "stream3"},
	"redis-8.0": {"string", "quicklist2", "intset", "set", "set-listpack", "zset-listpack", "zset2", "hash-listpack", "hash", "stream3",
		"hash-listpack-ex", "hash-metadata", "module2"},
	"redis-8": {"string", "quicklist2", "intset", "set", "set-listpack", "zset-listpack", "zset2", "hash-listpack", "hash", "stream3",
		"hash-listpack-ex", "hash-metadata", "module2"},
	"valkey-9":        {"string", "quicklist2", "intset", "set", "set-listpack", "zset-listpack", "zset2", "hash-listpack", "hash", "stream3", "hash2"},
	"redis-8-cluster": {"string", "hash-listpack"},
}

var optionSets = []Options{
	{},
	{MaxChunkElems: 1, MaxChunkBytes: 1},
	{MaxChunkElems: 2, MaxChunkBytes: 13},
	{MaxChunkElems: 7, MaxChunkBytes: 64},
	{MaxChunkElems: 100000, MaxChunkBytes: 1 << 30},
}

// TestTestdata reads every committed file in every mode with several
// chunk limits: the values must not depend on them, raw bytes must read
// back as the same values.
func TestTestdata(t *testing.T) {
	for name, data := range testdataFiles(t) {
		t.Run(name, func(t *testing.T) {
			base, err := collect(bytes.NewReader(data), collectOpts{})
			must(t, err)
			seen := map[string]bool{}
			for _, kv := range base.Keys {
				seen[kv.Start.Encoding] = true
			}
			want, ok := testdataEncodings[name]
			if !ok {
				t.Fatalf("no expectations for testdata/%s.rdb", name)
			}
			for _, e := range want {
				if !seen[e] {
					t.Errorf("no %s key", e)
				}
			}
			if strings.HasSuffix(name, "-cluster") && len(base.Slots) == 0 {
				t.Errorf("no slot info")
			}
			for i, o := range optionSets {
				for _, walk := range []bool{false, true} {
					m, err := collect(iotest.OneByteReader(bytes.NewReader(data)), collectOpts{Options: o, walk: walk})
					if err != nil {
						t.Fatalf("options %d walk %v: %v", i, walk, err)
					}
					if !reflect.DeepEqual(m.Order, base.Order) {
						t.Fatalf("options %d: key order differs", i)
					}
					for id, kv := range m.Keys {
						if !equalValues(kv, base.Keys[id]) || !bytes.Equal(kv.Raw, base.Keys[id].Raw) {
							t.Errorf("options %d walk %v: %v differs", i, walk, id)
						}
					}
				}
				raw, err := collect(bytes.NewReader(data), collectOpts{Options: o, mode: modeRaw})
				must(t, err)
				if err := checkRawRoundTrip(base.Header, base, raw, o); err != nil {
					t.Errorf("options %d: %v", i, err)
				}
				for _, mode := range []readMode{modeSkip, modeMixed, modeAllRaw} {
					m, err := collect(bytes.NewReader(data), collectOpts{Options: o, mode: mode})
					must(t, err)
					if !slices.Equal(m.Order, base.Order) {
						t.Errorf("options %d mode %d: keys differ", i, mode)
					}
				}
			}
		})
	}
}

// TestTruncation: every strict prefix of committed files (between them
// every encoding the servers write) is ErrTruncated at the end of the
// prefix, never a panic, never a clean end.
func TestTruncation(t *testing.T) {
	files := testdataFiles(t)
	for _, name := range []string{"redis-7.0", "redis-8", "valkey-9", "redis-8-cluster"} {
		data := files[name]
		for n := range len(data) {
			_, err := collect(bytes.NewReader(data[:n]), collectOpts{Options: Options{MaxChunkElems: 2, MaxChunkBytes: 16}, walk: true})
			if !errors.Is(err, ErrTruncated) || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("%s cut at %d of %d: %v", name, n, len(data), err)
			}
			var re *Error
			if n >= 9 && (!errors.As(err, &re) || re.Offset != int64(n)) {
				t.Fatalf("%s cut at %d: error %v, want offset %d", name, n, err, n)
			}
		}
	}
}

// TestChecksum: a changed trailer or a changed byte is ErrChecksum; a zero
// trailer (rdbchecksum no) is not checked.
func TestChecksum(t *testing.T) {
	files := testdataFiles(t)
	data := files["redis-7.0"]
	bad := bytes.Clone(data)
	bad[len(bad)-3] ^= 1
	if _, err := collect(bytes.NewReader(bad), collectOpts{}); !errors.Is(err, ErrChecksum) ||
		!strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("changed trailer: %v", err)
	}
	i := bytes.Index(data, []byte("hello"))
	if i < 0 {
		t.Fatal("no hello")
	}
	bad = bytes.Clone(data)
	bad[i+4] = 'p'
	m, err := collect(bytes.NewReader(bad), collectOpts{})
	if !errors.Is(err, ErrChecksum) {
		t.Errorf("changed value: %v", err)
	} else if m.Keys[keyID{0, "str:raw"}] == nil || string(m.Keys[keyID{0, "str:raw"}].Str) != "hellp" {
		t.Errorf("the keys before the trailer were not delivered")
	}
	m, err = collect(bytes.NewReader(data), collectOpts{})
	if err != nil || !m.EOF.Verified || m.EOF.Checksum == 0 {
		t.Errorf("good file: %+v %v", m.EOF, err)
	}
	nocrc := files["valkey-8.0"] // saved with rdbchecksum no
	if !bytes.Equal(nocrc[len(nocrc)-8:], make([]byte, 8)) {
		t.Fatalf("valkey-8.0.rdb has a checksum")
	}
	i = bytes.Index(nocrc, []byte("hello"))
	bad = bytes.Clone(nocrc)
	bad[i+4] = 'p'
	m, err = collect(bytes.NewReader(bad), collectOpts{})
	if err != nil || m.EOF.Verified {
		t.Errorf("no checksum: %+v %v", m.EOF, err)
	}
}

// TestRest: the input after the checksum is still readable.
func TestRest(t *testing.T) {
	data := testdataFiles(t)["redis-8"]
	in := io.MultiReader(bytes.NewReader(data), strings.NewReader("+after\r\n"))
	r, err := NewReader(in, Options{})
	must(t, err)
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
	}
	rest, err := io.ReadAll(r.Rest())
	must(t, err)
	if string(rest) != "+after\r\n" {
		t.Errorf("rest %q", rest)
	}
}

// TestClose: stopping early releases the reader; Next then fails.
func TestClose(t *testing.T) {
	data := testdataFiles(t)["redis-8"]
	r, err := NewReader(bytes.NewReader(data), Options{})
	must(t, err)
	for range 5 {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}
	must(t, r.Close())
	if _, err := r.Next(); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Close: %v", err)
	}
	// Walk stops at the callback's error.
	r, err = NewReader(bytes.NewReader(data), Options{})
	must(t, err)
	stop := errors.New("stop")
	n := 0
	err = r.Walk(func(ev Event) error {
		if n++; n == 10 {
			return stop
		}
		return nil
	})
	if err != stop || n != 10 {
		t.Errorf("Walk: %v after %d events", err, n)
	}
}
