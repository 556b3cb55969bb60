// Package pipe moves a byte stream across a goroutine boundary through a
// few fixed-size buffers, so that producing and consuming it (JSON encoding
// and gzip, gunzip and JSON parsing) run on different cores. Memory is
// bounded by depth × size.
package pipe

import (
	"io"
	"sync"
)

// Writer is an io.WriteCloser whose writes reach the underlying writer from
// another goroutine. Close flushes, waits, and returns the first error of the
// underlying writer; it does not close the underlying writer.
type Writer struct {
	dst  io.Writer
	buf  []byte
	size int
	full chan []byte
	free chan []byte
	done chan struct{}
	mu   sync.Mutex
	err  error
}

// NewWriter starts the goroutine that writes to dst, with depth buffers of
// size bytes.
func NewWriter(dst io.Writer, depth, size int) *Writer {
	w := &Writer{dst: dst, size: size, full: make(chan []byte, depth), free: make(chan []byte, depth+1), done: make(chan struct{})}
	for i := 0; i < depth+1; i++ {
		w.free <- make([]byte, 0, size)
	}
	w.buf = <-w.free
	go w.run()
	return w
}

func (w *Writer) run() {
	defer close(w.done)
	for b := range w.full {
		if w.failed() == nil {
			if _, err := w.dst.Write(b); err != nil {
				w.setErr(err)
			}
		}
		w.free <- b[:0]
	}
}

func (w *Writer) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *Writer) setErr(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

// Write buffers p; it returns the underlying writer's error once one is known.
func (w *Writer) Write(p []byte) (int, error) {
	if err := w.failed(); err != nil {
		return 0, err
	}
	n := 0
	for len(p) > 0 {
		k := copy(w.buf[len(w.buf):w.size], p)
		w.buf = w.buf[:len(w.buf)+k]
		p = p[k:]
		n += k
		if len(w.buf) == w.size {
			w.full <- w.buf
			w.buf = <-w.free
		}
	}
	return n, nil
}

// Close sends what is buffered and waits for the goroutine.
func (w *Writer) Close() error {
	if w.buf == nil {
		<-w.done
		return w.failed()
	}
	if len(w.buf) > 0 {
		w.full <- w.buf
	}
	w.buf = nil
	close(w.full)
	<-w.done
	return w.failed()
}

// Reader reads ahead of its consumer: a goroutine fills buffers from src.
type Reader struct {
	full chan chunk
	free chan []byte
	base []byte // the buffer being consumed (full length), nil when none
	off  int    // consumed bytes of base
	n    int    // valid bytes of base
	err  error
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

type chunk struct {
	b   []byte
	n   int
	err error
}

// NewReader starts the goroutine that reads src, with depth buffers of size
// bytes. The caller must Close the Reader before closing src (src is not
// closed).
func NewReader(src io.Reader, depth, size int) *Reader {
	r := &Reader{full: make(chan chunk, depth), free: make(chan []byte, depth+1), stop: make(chan struct{}), done: make(chan struct{})}
	for i := 0; i < depth+1; i++ {
		r.free <- make([]byte, size)
	}
	go func() {
		defer close(r.done)
		defer close(r.full)
		for {
			var b []byte
			select {
			case b = <-r.free:
			case <-r.stop:
				return
			}
			n, err := io.ReadFull(src, b)
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			select {
			case r.full <- chunk{b, n, err}:
			case <-r.stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return r
}

// Read implements io.Reader. It returns src's error (io.EOF at the end)
// after the data that preceded it.
func (r *Reader) Read(p []byte) (int, error) {
	for r.base == nil || r.off == r.n {
		if r.base != nil {
			r.free <- r.base
			r.base = nil
		}
		if r.err != nil {
			return 0, r.err
		}
		c, ok := <-r.full
		if !ok {
			return 0, io.EOF
		}
		r.base, r.off, r.n, r.err = c.b, 0, c.n, c.err
	}
	k := copy(p, r.base[r.off:r.n])
	r.off += k
	return k, nil
}

// Close stops the goroutine and waits until it no longer touches src (a
// read in progress is let finish), so that src may be closed after it.
func (r *Reader) Close() error {
	r.once.Do(func() { close(r.stop) })
	<-r.done
	return nil
}
