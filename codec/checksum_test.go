package codec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"filippo.io/age"
)

// seal gives a hand-written document its checksum (FORMAT.md
// "Integrity"): the member "sha256" is added before the closing brace of
// the top-level object (which must hold at least one member).
func seal(doc []byte) []byte {
	end := bytes.LastIndexByte(doc, '}')
	out := append(bytes.Clone(doc[:end]), ',')
	sum := sha256.Sum256(out)
	out = append(out, `"sha256":"`...)
	out = append(out, hex.EncodeToString(sum[:])...)
	out = append(out, '"')
	return append(out, doc[end:]...)
}

// digestBefore is FORMAT.md's definition, computed independently of the
// Reader: the SHA-256 of the document before the last `"sha256"` name.
func digestBefore(doc []byte) string {
	i := bytes.LastIndex(doc, []byte(`"sha256"`))
	sum := sha256.Sum256(doc[:i])
	return hex.EncodeToString(sum[:])
}

// readTrailer reads a whole document and returns its trailer.
func readTrailer(r *Reader) (Trailer, error) {
	if _, err := r.Header(); err != nil {
		return Trailer{}, err
	}
	for {
		c, err := r.Next()
		if err == io.EOF {
			return r.Trailer(), nil
		}
		if err != nil {
			return Trailer{}, err
		}
		r.Release(c)
	}
}

// The Writer's digest is FORMAT.md's, the Reader finds and checks it; the
// older goldens carry none.
func TestChecksumWriterReader(t *testing.T) {
	for seed := uint64(0); seed < 5; seed++ {
		keys := genData(rand.New(rand.NewPCG(seed, 11)), 30, seed == 0)
		var buf bytes.Buffer
		w := NewWriter(&buf, Header{})
		writeKeys(t, w, keys)
		wt, err := w.Close()
		if err != nil {
			t.Fatal(err)
		}
		doc := buf.Bytes()
		if wt.Checksum != digestBefore(doc) || wt.Verified {
			t.Fatalf("writer trailer %+v, digest %s", wt, digestBefore(doc))
		}
		if !bytes.HasSuffix(doc, []byte(`,"sha256":"`+wt.Checksum+"\"}\n")) {
			t.Fatalf("document ends %q", doc[len(doc)-100:])
		}
		for _, size := range []int{8 << 10, readBufSize} {
			rt, err := readTrailer(newReaderSize(bytes.NewReader(doc), ReaderOptions{}, size))
			if err != nil || rt.Checksum != wt.Checksum || !rt.Verified || rt.KeysCount != int64(len(keys)) {
				t.Fatalf("reader trailer %+v, %v", rt, err)
			}
		}
	}
	v2, _ := os.ReadFile("testdata/v2.json")
	rt, err := readTrailer(NewReader(bytes.NewReader(v2)))
	if err != nil || !rt.Verified || rt.Checksum != digestBefore(v2) || rt.Checksum != "87066c7e3aafcd51693c83352706ae01c80239d25e685eb276e2282cbf1fe86d" {
		t.Fatalf("v2.json: %+v %v", rt, err)
	}
	for _, name := range []string{"v1.json", "seed_ascii.json"} {
		data, _ := os.ReadFile("testdata/" + name)
		rt, err := readTrailer(NewReader(bytes.NewReader(data)))
		if err != nil || rt.Verified || rt.Checksum != "" {
			t.Fatalf("%s: %+v %v", name, rt, err)
		}
	}
}

// The member is found wherever buffer refills fall: one byte per Read,
// half reads, and a refill inside the member's name.
func TestChecksumAcrossRefills(t *testing.T) {
	v2, _ := os.ReadFile("testdata/v2.json")
	for _, wrap := range []func(io.Reader) io.Reader{iotest.OneByteReader, iotest.HalfReader, iotest.DataErrReader} {
		rt, err := readTrailer(newReaderSize(wrap(bytes.NewReader(v2)), ReaderOptions{MaxChunkItems: 3, MaxChunkBytes: 64}, 8<<10))
		if err != nil || !rt.Verified {
			t.Fatalf("%+v %v", rt, err)
		}
	}
	// An unknown member before sha256 moves the name across the 8 KiB
	// buffer's edge byte by byte; a damaged copy of each must fail.
	for pad := 8<<10 - 200; pad < 8<<10+50; pad++ {
		doc := seal([]byte(`{"format":"redback","format_version":2,"data":{},"keys_count":0,"x":"` + strings.Repeat("p", pad) + `"}`))
		for _, wrap := range []func(io.Reader) io.Reader{func(r io.Reader) io.Reader { return r }, iotest.HalfReader} {
			rt, err := readTrailer(newReaderSize(wrap(bytes.NewReader(doc)), ReaderOptions{}, 8<<10))
			if err != nil || !rt.Verified {
				t.Fatalf("pad %d: %+v %v", pad, rt, err)
			}
		}
		bad := bytes.Clone(doc)
		bad[100] = 'q'
		if _, err := readTrailer(newReaderSize(bytes.NewReader(bad), ReaderOptions{}, 8<<10)); !errors.Is(err, ErrChecksum) {
			t.Fatalf("pad %d: damaged: %v", pad, err)
		}
	}
}

// What FORMAT.md says a reader refuses, and what it accepts.
func TestChecksumRules(t *testing.T) {
	base := `{"format":"redback","format_version":2,"data":{"k":{"type":"string","value":"v"}},"keys_count":1}`
	good := seal([]byte(base))
	digest := digestBefore(good)
	body := base[:len(base)-1] + ","
	sum := func(s string) string { d := sha256.Sum256([]byte(s)); return hex.EncodeToString(d[:]) }
	early := `{"format":"redback","format_version":2,`
	cases := []struct {
		name, doc string
		checksum  bool // ErrChecksum (else another ErrCorrupt)
		msg       string
	}{
		{"missing", base, false, `no "sha256"`},
		{"wrong digest", body + `"sha256":"` + strings.Repeat("0", 64) + `"}`, true, "hashes to " + digest},
		{"upper case", body + `"sha256":"` + strings.ToUpper(digest) + `"}`, false, "lowercase hex"},
		{"escaped", body + `"sha256":"\u00` + hex.EncodeToString([]byte(digest[:1])) + digest[1:] + `"}`, false, "lowercase hex"},
		{"short", body + `"sha256":"` + digest[:63] + `"}`, false, "lowercase hex"},
		{"long", body + `"sha256":"` + digest + `0"}`, false, "too long"},
		{"not hex", body + `"sha256":"` + digest[:63] + `g"}`, false, "lowercase hex"},
		{"number", body + `"sha256":12}`, false, "expected a string"},
		{"null", body + `"sha256":null}`, false, "expected a string"},
		{"member after", body + `"sha256":"` + digest + `","completed_at":"x"}`, false, "must be the last"},
		{"twice", body + `"sha256":"` + digest + `","sha256":"` + digest + `"}`, false, "must be the last"},
		{"before the keys", early + `"sha256":"` + sum(early) + `","data":{},"keys_count":0}`, false, "must be the last"},
		{"trailing data", body + `"sha256":"` + digest + `"}x`, false, "trailing data"},
		{"in a version 1 archive, wrong", strings.Replace(body, `"format_version":2`, `"format_version":1`, 1) + `"sha256":"` + digest + `"}`, true, "archive checksum mismatch"},
		{"in a seed archive, wrong", `{"data":{},"sha256":"` + digest + `"}`, true, "archive checksum mismatch"},
	}
	for _, c := range cases {
		err := drain([]byte(c.doc), ReaderOptions{})
		if !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrChecksum) != c.checksum || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "at byte") {
			t.Errorf("%s: got %v, want ErrCorrupt (ErrChecksum %v) with %q", c.name, err, c.checksum, c.msg)
		}
	}
	if err := drain(good, ReaderOptions{}); err != nil {
		t.Fatal(err)
	}
	// White space is hashed where it is part of the document; after the
	// member it is not, as it is not before the colon.
	for _, doc := range [][]byte{
		seal([]byte(" \n{ \"format\":\"redback\", \"format_version\":2, \"data\":{}, \"keys_count\":0 }")),
		[]byte(body + "\n  \"sha256\"" + ` : "` + sum(body+"\n  ") + "\" \n}\n\t "),
	} {
		rt, err := readTrailer(NewReader(bytes.NewReader(doc)))
		if err != nil || !rt.Verified {
			t.Fatalf("%q: %+v %v", doc, rt, err)
		}
	}
	// A version 1 archive with a right one is read, and says so.
	v1 := seal([]byte(strings.Replace(base, `"format_version":2`, `"format_version":1`, 1)))
	if rt, err := readTrailer(NewReader(bytes.NewReader(v1))); err != nil || !rt.Verified {
		t.Fatalf("v1 with a checksum: %+v %v", rt, err)
	}
	// The keys come out before the member is reached: Next returns the
	// mismatch at the end, instead of io.EOF.
	r := NewReader(strings.NewReader(cases[1].doc))
	c, err := r.Next()
	if err != nil || string(c.Key) != "k" {
		t.Fatalf("first chunk: %v", err)
	}
	if _, err := r.Next(); !errors.Is(err, ErrChecksum) {
		t.Fatalf("after the keys: %v", err)
	}
	if _, err := r.Next(); !errors.Is(err, ErrChecksum) {
		t.Fatalf("sticky: %v", err)
	}
	if rt := r.Trailer(); rt.Verified || rt.Checksum != strings.Repeat("0", 64) {
		t.Fatalf("trailer %+v", rt)
	}
}

// refused reports whether a document is refused (any error; ErrChecksum
// counted apart).
func refused(t *testing.T, doc []byte) (bool, bool) {
	t.Helper()
	var err error
	if len(doc) < 64<<10 {
		err = drainSmall(doc, ReaderOptions{MaxChunkItems: 5, MaxChunkBytes: 256})
	} else {
		err = drain(doc, ReaderOptions{})
	}
	if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNewerFormat) {
		t.Fatalf("error neither corrupt nor newer: %v", err)
	}
	return err != nil, errors.Is(err, ErrChecksum)
}

// TestBitFlipsRefused: a flipped bit anywhere in a version 2 document (a
// value, a key, a count, the digest, the syntax) is refused, as a parse
// error or as a checksum mismatch; never read as valid. Seed and version 1
// archives, which carry no checksum, are not so protected (the agent says
// so).
func TestBitFlipsRefused(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 11))
	v2, _ := os.ReadFile("testdata/v2.json")
	big := realisticArchive(t, 256<<10)
	total, bySum := 0, 0
	flipAt := func(doc []byte, i int) {
		m := bytes.Clone(doc)
		m[i] ^= 1 << rng.IntN(8)
		bad, sum := refused(t, m)
		if !bad {
			t.Fatalf("flip of byte %d (%q -> %q) read as valid: ...%q...", i, doc[i], m[i], doc[max(0, i-40):min(len(doc), i+40)])
		}
		total++
		if sum {
			bySum++
		}
	}
	// Every byte of v2.json, one random bit each (every third byte under
	// the race detector, ten times slower); N random bytes of a bigger
	// archive.
	step, n := 1, 500
	if raceEnabled {
		step, n = 3, 150
	}
	for i := 0; i < len(v2); i += step {
		flipAt(v2, i)
	}
	for ; n > 0; n-- {
		flipAt(big, rng.IntN(len(big)))
	}
	// Every bit of some chosen places: a value, a key, keys_count, the
	// digest, the name "sha256", the closing brace.
	for _, at := range []string{`"value 7"`, `"no field ttl"`, `"keys_count":9`, `"sha256":"`, `"}` + "\n"} {
		i := bytes.LastIndex(v2, []byte(at))
		for j := i; j < i+len(at)+8 && j < len(v2)-1; j++ {
			for bit := 0; bit < 8; bit++ {
				m := bytes.Clone(v2)
				m[j] ^= 1 << bit
				if bad, _ := refused(t, m); !bad {
					t.Fatalf("flip of bit %d of byte %d (in %s) read as valid", bit, j, at)
				}
			}
		}
	}
	t.Logf("%d flips refused, %d of them by the checksum", total, bySum)
	if bySum < total/4 {
		t.Fatalf("only %d of %d flips caught by the checksum: is it checked?", bySum, total)
	}
}

// The checksum holds through the layers: a document damaged before it was
// compressed or encrypted (so gzip's CRC and age's MAC are good) is
// refused; truncated layers are refused too.
func TestChecksumThroughLayers(t *testing.T) {
	v2, _ := os.ReadFile("testdata/v2.json")
	id, _ := age.GenerateX25519Identity()
	i := bytes.Index(v2, []byte(`"value 7"`)) + 3
	bad := bytes.Clone(v2)
	bad[i] ^= 0x01 // "value 7" -> "vamue 7": still valid JSON, same length
	for _, o := range []EncodeOptions{{}, {Gzip: true}, {Recipients: []age.Recipient{id.Recipient()}}, {Gzip: true, Recipients: []age.Recipient{id.Recipient()}}} {
		for _, doc := range [][]byte{v2, bad} {
			var buf bytes.Buffer
			enc, err := NewEncoder(&buf, o)
			if err != nil {
				t.Fatal(err)
			}
			enc.Write(doc)
			enc.Close()
			arch := buf.Bytes()
			read := func(arch []byte) (Trailer, error) {
				jr, _, err := NewDecoder(bytes.NewReader(arch), DecodeOptions{Identities: []age.Identity{id}})
				if err != nil {
					return Trailer{}, err
				}
				return readTrailer(NewReader(jr))
			}
			rt, err := read(arch)
			if damaged := &doc[0] == &bad[0]; damaged {
				if !errors.Is(err, ErrChecksum) {
					t.Fatalf("%+v: damaged document: %v", o, err)
				}
			} else if err != nil || !rt.Verified {
				t.Fatalf("%+v: %+v %v", o, rt, err)
			}
			// (A plain document may lose its trailing line break, no more.)
			for _, n := range []int{len(arch) - 2, len(arch) - 8, len(arch) / 2, len(arch) - 100} {
				if _, err := read(arch[:n]); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%+v: cut at %d of %d: %v", o, n, len(arch), err)
				}
			}
		}
	}
}

// The example of FORMAT.md reads, and its digest is right.
func TestFormatExample(t *testing.T) {
	md, err := os.ReadFile("../docs/FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	start := bytes.Index(md, []byte("```json\n{\n  \"format\": \"redback\""))
	if start < 0 {
		t.Fatal("example not found")
	}
	start += len("```json\n")
	end := start + bytes.Index(md[start:], []byte("\n```"))
	doc := md[start:end]
	h, keys, tr, err := readAll(t, doc, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h.FormatVersion != 2 || len(keys) != 3 || !tr.Verified || tr.Checksum != digestBefore(doc) {
		t.Fatalf("%+v %d keys %+v", h, len(keys), tr)
	}
}
