package rdbvalue

import "errors"

// The compact encodings Redis stores as one RDB string (a blob): listpack,
// ziplist, intset and zipmap, each read by an iterator (Listpack, Ziplist,
// Intset, Zipmap) that both Decode and the RDB file reader use.
//
// Their contract: they never read outside the blob, whatever its bytes;
// string entries are sub-slices of the blob whose capacity is their
// length; integer entries come as int64 (the caller formats them); they
// check the structure (header, entry framing, end marker, declared count)
// but not what Redis's deep sanitization also checks (sorted ziplists,
// unique intset members, backlen and prevlen values). Their errors are
// plain descriptions ("truncated listpack entry"), without sentinel or
// position: the caller wraps them with its own context.

var (
	errLPTrunc = errors.New("truncated listpack entry")
	errZLTrunc = errors.New("truncated ziplist entry")
	errZMTrunc = errors.New("truncated zipmap")
)

// entries is the state that Listpack and Ziplist share. Their inlinable
// fast paths (listpackShort, ziplistShort) are methods of it, not of them,
// so that they fit the inliner's budget.
type entries struct {
	b    []byte
	i    int // next entry
	want int // declared count, -1 when unknown
	got  int
}

func newEntries(b []byte, first int, count uint16) entries {
	want := int(count)
	if want == 0xffff {
		want = -1
	}
	return entries{b: b, i: first, want: want}
}

// Len returns the element count the header declares, -1 when it does not
// know it (65535 elements or more). It is checked at the end, so it may
// be a lie until then.
func (e *entries) Len() int { return e.want }

// More reports whether entries remain before the end marker: Next then
// returns one, or an error.
func (e *entries) More() bool { return e.i < len(e.b)-1 }

// endErr is what reaching the end of a listpack or ziplist (what) says:
// nil, or an overrun, or a count that does not match the header's.
func (e *entries) endErr(what string) error {
	if e.i != len(e.b)-1 {
		return errors.New(what + " overrun")
	}
	if e.want >= 0 && e.want != e.got {
		return errors.New(what + " element count does not match its header")
	}
	return nil
}
