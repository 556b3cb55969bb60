package rdbfile

import (
	"encoding/binary"
	"strconv"

	"github.com/redback-dev/redback/agent/engine/rdbvalue"
)

// RDB string encodings (the low bits of a 11xxxxxx length byte).
const (
	encInt8  = 0
	encInt16 = 1
	encInt32 = 2
	encLZF   = 3
)

// arena hands out byte ranges for the elements of one chunk; reset makes
// all of its memory reusable (it keeps its blocks, so that steady-state
// reading does not allocate). Ranges larger than half a block get their own
// allocation.
type arena struct {
	blocks [][]byte
	cur    int
}

const blockSize = 64 << 10

func (a *arena) alloc(n int) []byte {
	if n > blockSize/2 {
		return make([]byte, n)
	}
	for {
		if a.cur < len(a.blocks) {
			b := a.blocks[a.cur]
			if l := len(b); cap(b)-l >= n {
				a.blocks[a.cur] = b[:l+n]
				return b[l : l+n : l+n]
			}
			a.cur++
			continue
		}
		a.blocks = append(a.blocks, make([]byte, 0, blockSize))
	}
}

func (a *arena) copy(p []byte) []byte {
	b := a.alloc(len(p))
	copy(b, p)
	return b
}

func (a *arena) int(v int64) []byte {
	var t [20]byte
	return a.copy(strconv.AppendInt(t[:0], v, 10))
}

func (a *arena) reset() {
	for i := 0; i <= a.cur && i < len(a.blocks); i++ {
		a.blocks[i] = a.blocks[i][:0]
	}
	a.cur = 0
}

// readInt reads the integer of an int-encoded string.
func (r *Reader) readEncInt(enc uint64) (int64, error) {
	switch enc {
	case encInt8:
		b, err := r.readByte()
		return int64(int8(b)), err
	case encInt16:
		p, err := r.take(2)
		if err != nil {
			return 0, err
		}
		return int64(int16(binary.LittleEndian.Uint16(p))), nil
	case encInt32:
		p, err := r.take(4)
		if err != nil {
			return 0, err
		}
		return int64(int32(binary.LittleEndian.Uint32(p))), nil
	}
	return 0, r.errf(ErrCorrupt, "unknown string encoding %d", enc)
}

// lzfLengths reads the compressed and uncompressed lengths of an
// LZF-encoded string.
func (r *Reader) lzfLengths() (clen, ulen uint64, err error) {
	if clen, err = r.length("LZF compressed length"); err != nil {
		return
	}
	if ulen, err = r.length("LZF uncompressed length"); err != nil {
		return
	}
	if !rdbvalue.LZFLengthsOK(clen, ulen) {
		err = r.errf(ErrCorrupt, "bad LZF lengths %d -> %d", clen, ulen)
	}
	return
}

// readStr reads an RDB string whole (raw, integer-encoded or LZF) into
// memory from a (the integers as decimal text). A string longer than limit
// is ErrTooLarge; memory grows only as data arrives.
func (r *Reader) readStr(a *arena, limit int, what string) ([]byte, error) {
	n, enc, err := r.rawLength()
	if err != nil {
		return nil, err
	}
	if enc {
		if n != encLZF {
			v, err := r.readEncInt(n)
			if err != nil {
				return nil, err
			}
			r.seen.intStrings++
			return a.int(v), nil
		}
		r.seen.lzfStrings++
		clen, ulen, err := r.lzfLengths()
		if err != nil {
			return nil, err
		}
		if clen > uint64(limit) || ulen > uint64(limit) {
			return nil, r.errf(ErrTooLarge, "%s of %d bytes (LZF) over the limit of %d", what, ulen, limit)
		}
		if r.lzfIn, err = r.appendN(r.lzfIn[:0], clen); err != nil {
			return nil, err
		}
		out := a.alloc(int(ulen))
		ok := rdbvalue.LZFDecompress(r.lzfIn, out)
		if cap(r.lzfIn) > 4*smallRead {
			r.lzfIn = nil
		}
		if !ok {
			return nil, r.errf(ErrCorrupt, "bad LZF data in %s", what)
		}
		return out, nil
	}
	if n > uint64(limit) {
		return nil, r.errf(ErrTooLarge, "%s of %d bytes over the limit of %d", what, n, limit)
	}
	if n <= smallRead {
		b := a.alloc(int(n))
		return b, r.readFull(b)
	}
	return r.appendN(nil, n)
}

// skipStr reads past an RDB string without keeping it (the tee, if any,
// still sees its bytes).
func (r *Reader) skipStr() error {
	n, enc, err := r.rawLength()
	if err != nil {
		return err
	}
	if !enc {
		return r.discard(n)
	}
	switch n {
	case encInt8:
		return r.discard(1)
	case encInt16:
		return r.discard(2)
	case encInt32:
		return r.discard(4)
	case encLZF:
		clen, _, err := r.lzfLengths()
		if err != nil {
			return err
		}
		return r.discard(clen)
	}
	return r.errf(ErrCorrupt, "unknown string encoding %d", n)
}

// lzfStream decompresses clen bytes of LZF input from the reader, which
// must yield ulen bytes, handing the output to emit in pieces of at most
// piece bytes; between pieces it holds only the last 8 KiB of output (the
// window back references reach into).
func (r *Reader) lzfStream(clen, ulen uint64, piece int, emit func([]byte) error) error {
	if uint64(piece) > ulen {
		piece = int(ulen) // ulen <= 88 * clen, and clen bytes follow
	}
	// w holds the output not yet emitted and the window before it; it
	// grows as output arrives, to at most maxLen.
	maxLen := piece + rdbvalue.LZFWindow + 2*rdbvalue.LZFMaxInstrOut
	if size := min(maxLen, smallRead); cap(r.win) < size {
		r.win = make([]byte, 0, size)
	}
	w := r.win[:0]
	defer func() {
		if cap(r.win) > 4*smallRead {
			r.win = nil
		}
	}()
	sent := 0 // w[:sent] has been emitted (it is the back-reference window)
	var total uint64
	// flush emits the unsent output in pieces of at most piece bytes
	// (all of it, or while a whole piece is there), then drops what is
	// neither unsent nor within the window.
	flush := func(all bool) error {
		for len(w)-sent >= piece || all && len(w) > sent {
			k := min(piece, len(w)-sent)
			if err := emit(w[sent : sent+k]); err != nil {
				return err
			}
			sent += k
		}
		if from := min(sent, len(w)-rdbvalue.LZFWindow); from > 0 {
			copy(w, w[from:])
			w = w[:len(w)-from]
			sent -= from
		}
		return nil
	}
	bad := func() error { return r.errf(ErrCorrupt, "bad LZF data in string value") }
	for left := clen; left > 0; {
		if len(w)-sent >= piece {
			if err := flush(false); err != nil {
				return err
			}
		}
		// Now len(w) <= the window + less than a piece: room for one
		// instruction at least.
		if cap(w)-len(w) < rdbvalue.LZFMaxInstrOut {
			g := make([]byte, len(w), min(2*cap(w), maxLen))
			copy(g, w)
			w = g
		}
		// Whole instructions from what is buffered (at least one
		// instruction's worth, or the rest), into the room w has, up to
		// a piece and one instruction unsent, and up to the declared size.
		if err := r.fill(int(min(left, rdbvalue.LZFMaxInstrIn))); err != nil {
			return err
		}
		in := r.buf[r.pos : r.pos+int(min(left, uint64(r.end-r.pos)))]
		room := min(uint64(cap(w)-len(w)), uint64(piece+rdbvalue.LZFMaxInstrOut-(len(w)-sent)), ulen-total)
		used, end, ok := rdbvalue.LZFDecode(in, w[:len(w)+int(room)], len(w))
		if !ok || used == 0 {
			// A reference before the start, an instruction cut short by
			// the end of the input, or output beyond ulen (there was
			// room for any instruction otherwise).
			return bad()
		}
		if err := r.consume(used); err != nil {
			return err
		}
		left -= uint64(used)
		total += uint64(end - len(w))
		w = w[:end]
	}
	r.win = w[:0]
	if total != ulen {
		return bad()
	}
	return flush(true)
}
