package pipe

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

func TestWriterAndReaderCarryEveryByte(t *testing.T) {
	data := make([]byte, 3<<20+17)
	for i := range data {
		data[i] = byte(rand.IntN(256))
	}
	var out bytes.Buffer
	w := NewWriter(&out, 3, 4096)
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1+rand.IntN(10000))
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("writer changed the stream")
	}
	r := NewReader(bytes.NewReader(data), 3, 5000)
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("reader changed the stream (%v)", err)
	}
}

type failing struct{ n int }

var errBoom = errors.New("boom")

func (f *failing) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, errBoom
	}
	return len(p), nil
}

func (f *failing) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errBoom
	}
	k := min(len(p), f.n)
	f.n -= k
	return k, nil
}

func TestErrorsReachTheOtherSide(t *testing.T) {
	w := NewWriter(&failing{n: 10000}, 2, 1024)
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = w.Write(make([]byte, 1000))
	}
	if cerr := w.Close(); !errors.Is(cerr, errBoom) {
		t.Fatalf("Close: %v", cerr)
	}
	r := NewReader(&failing{n: 5000}, 2, 1024)
	defer r.Close()
	got, err := io.ReadAll(r)
	if !errors.Is(err, errBoom) || len(got) != 5000 {
		t.Fatalf("read %d bytes, err %v", len(got), err)
	}
}

type slowSource struct{ reads int }

func (s *slowSource) Read(p []byte) (int, error) {
	s.reads++ // a race with Close's caller shows under -race
	return len(p), nil
}

func TestCloseWaitsForTheReader(t *testing.T) {
	src := &slowSource{}
	r := NewReader(src, 2, 64)
	buf := make([]byte, 10)
	if _, err := r.Read(buf); err != nil {
		t.Fatal(err)
	}
	r.Close()
	n := src.reads // after Close, the goroutine no longer reads
	if n == 0 {
		t.Fatal("no read happened")
	}
	src.reads = -1
}
