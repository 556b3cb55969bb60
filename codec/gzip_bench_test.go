package codec

import (
	stdgzip "compress/gzip"
	"io"
	"os"
	"sync"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/pgzip"
)

var (
	gzipInputOnce sync.Once
	gzipInput     []byte
)

// gzipBenchInput is a realistic archive of 100 MB, or of
// REDBACK_GZIP_BENCH_MB megabytes... kept at 16 MB unless asked, so that
// the benchmarks stay quick.
func gzipBenchInput(b *testing.B) []byte {
	gzipInputOnce.Do(func() {
		mb := 16
		if os.Getenv("REDBACK_GZIP_BENCH_BIG") != "" {
			mb = 100
		}
		gzipInput = realisticArchive(b, mb<<20)
	})
	return gzipInput
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func benchGzip(b *testing.B, mk func(io.Writer) io.WriteCloser) {
	in := gzipBenchInput(b)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	var out int64
	for b.Loop() {
		cw := &countWriter{}
		zw := mk(cw)
		for p := in; len(p) > 0; {
			n := min(len(p), 256<<10)
			if _, err := zw.Write(p[:n]); err != nil {
				b.Fatal(err)
			}
			p = p[n:]
		}
		if err := zw.Close(); err != nil {
			b.Fatal(err)
		}
		out = cw.n
	}
	b.ReportMetric(float64(out)/float64(len(in))*100, "%size")
}

func BenchmarkGzipKlauspostStateless(b *testing.B) {
	benchGzip(b, func(w io.Writer) io.WriteCloser {
		z, _ := kgzip.NewWriterLevel(w, kgzip.StatelessCompression)
		return z
	})
}
func BenchmarkGzipKlauspost1(b *testing.B) {
	benchGzip(b, func(w io.Writer) io.WriteCloser { z, _ := kgzip.NewWriterLevel(w, 1); return z })
}
func BenchmarkGzipKlauspost2(b *testing.B) {
	benchGzip(b, func(w io.Writer) io.WriteCloser { z, _ := kgzip.NewWriterLevel(w, 2); return z })
}
func BenchmarkGzipKlauspost3(b *testing.B) {
	benchGzip(b, func(w io.Writer) io.WriteCloser { z, _ := kgzip.NewWriterLevel(w, 3); return z })
}
func BenchmarkGzipKlauspostDefault(b *testing.B) {
	benchGzip(b, func(w io.Writer) io.WriteCloser { z, _ := kgzip.NewWriterLevel(w, kgzip.DefaultCompression); return z })
}
func BenchmarkGzipStdlib1(b *testing.B) {
	benchGzip(b, func(w io.Writer) io.WriteCloser { z, _ := stdgzip.NewWriterLevel(w, 1); return z })
}
func BenchmarkGzipStdlibDefault(b *testing.B) {
	benchGzip(b, func(w io.Writer) io.WriteCloser {
		z, _ := stdgzip.NewWriterLevel(w, stdgzip.DefaultCompression)
		return z
	})
}
func BenchmarkGzipPgzip1(b *testing.B) {
	benchGzip(b, func(w io.Writer) io.WriteCloser { z, _ := pgzip.NewWriterLevel(w, 1); return z })
}
func BenchmarkGzipPgzipDefault(b *testing.B) {
	benchGzip(b, func(w io.Writer) io.WriteCloser { z, _ := pgzip.NewWriterLevel(w, pgzip.DefaultCompression); return z })
}

// BenchmarkGunzipKlauspost measures decompression of the default level.
func BenchmarkGunzipKlauspost(b *testing.B) {
	in := gzipBenchInput(b)
	var z countBuf
	zw, _ := kgzip.NewWriterLevel(&z, DefaultGzipLevel)
	zw.Write(in)
	zw.Close()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		zr, err := kgzip.NewReader(&sliceReader{b: z.b})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, zr); err != nil {
			b.Fatal(err)
		}
	}
}

type countBuf struct{ b []byte }

func (c *countBuf) Write(p []byte) (int, error) { c.b = append(c.b, p...); return len(p), nil }

type sliceReader struct{ b []byte }

func (s *sliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}
