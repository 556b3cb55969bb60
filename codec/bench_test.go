package codec

import (
	"bytes"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
)

var (
	benchOnce sync.Once
	benchKeys []genKey
	benchDoc  []byte
)

// benchData is about 16 MB of realistic archive JSON and its keys.
func benchData(b *testing.B) ([]genKey, []byte) {
	benchOnce.Do(func() {
		rng := rand.New(rand.NewPCG(1, 2))
		benchKeys = realistic(rng, 60000)
		var buf bytes.Buffer
		w := NewWriter(&buf, Header{})
		writeKeys(b, w, benchKeys)
		w.Close()
		benchDoc = buf.Bytes()
	})
	return benchKeys, benchDoc
}

// BenchmarkWriter measures the JSON writer alone (to io.Discard); MB/s
// are of JSON produced.
func BenchmarkWriter(b *testing.B) {
	keys, doc := benchData(b)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		w := NewWriter(io.Discard, Header{})
		writeKeys(b, w, keys)
		if _, err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(keys)), "keys/op")
}

// BenchmarkReader measures parsing with chunks given back by Release.
func BenchmarkReader(b *testing.B) {
	benchRead(b, true)
}

// BenchmarkReaderNoRelease measures parsing when chunks are kept.
func BenchmarkReaderNoRelease(b *testing.B) {
	benchRead(b, false)
}

func benchRead(b *testing.B, release bool) {
	keys, doc := benchData(b)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		r := NewReader(bytes.NewReader(doc))
		n := 0
		for {
			c, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if c.Last {
				n++
			}
			if release {
				r.Release(c)
			}
		}
		if n != len(keys) {
			b.Fatalf("%d keys", n)
		}
	}
	b.ReportMetric(float64(len(keys)), "keys/op")
}

// BenchmarkEncodeBytes measures the escaping of typical text values.
func BenchmarkEncodeBytes(b *testing.B) {
	v := []byte(`{"id":123456,"name":"John \"J\" Smith","lang":"en","bio":"héllo wörld"}`)
	var dst []byte
	b.SetBytes(int64(len(v)))
	b.ReportAllocs()
	for b.Loop() {
		dst = EncodeBytes(dst[:0], v)
	}
}

// BenchmarkBackupPipeline measures Writer + gzip (default level) on one
// goroutine, as a backup runs.
func BenchmarkBackupPipeline(b *testing.B) {
	keys, doc := benchData(b)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		enc, _ := NewEncoder(io.Discard, EncodeOptions{Gzip: true})
		w := NewWriter(enc, Header{})
		writeKeys(b, w, keys)
		if _, err := w.Close(); err != nil {
			b.Fatal(err)
		}
		enc.Close()
	}
}

// BenchmarkRestorePipeline measures gunzip + Reader.
func BenchmarkRestorePipeline(b *testing.B) {
	_, doc := benchData(b)
	var z bytes.Buffer
	enc, _ := NewEncoder(&z, EncodeOptions{Gzip: true})
	enc.Write(doc)
	enc.Close()
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		jr, _, err := NewDecoder(bytes.NewReader(z.Bytes()), DecodeOptions{})
		if err != nil {
			b.Fatal(err)
		}
		r := NewReader(jr)
		for {
			c, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			r.Release(c)
		}
	}
}
