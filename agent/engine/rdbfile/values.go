package rdbfile

import (
	"encoding/binary"
	"math"
	"strconv"

	"github.com/redback-dev/redback/agent/engine/rdbvalue"
)

// Parsing of values into chunk events.

// parseValue reads the value of a key of RDB type t (not a module).
func (r *Reader) parseValue(t byte) error {
	switch t {
	case tString:
		return r.stringValue()
	case tList, tSet:
		return r.plainElems()
	case tZSet, tZSet2:
		return r.plainZSet(t == tZSet2)
	case tHash:
		return r.plainHash(false)
	case tHashZipmap:
		return r.zipmapHash()
	case tListZiplist:
		return r.blobElems(false, "ziplist")
	case tSetIntset:
		return r.intsetElems()
	case tZSetZiplist:
		return r.blobZSet(false)
	case tHashZiplist:
		return r.blobHash(false, false)
	case tListQuicklist:
		return r.quicklist(false)
	case tHashListpack:
		return r.blobHash(true, false)
	case tZSetListpack:
		return r.blobZSet(true)
	case tListQuicklist2:
		return r.quicklist(true)
	case tSetListpack:
		return r.blobElems(true, "listpack")
	case tStreamListpacks, tStreamListpacks2, tStreamListpacks3:
		return r.stream(t)
	}
	if r.hdr.Dialect == DialectValkey {
		if t == tValkeyHash2 {
			return r.valkeyHash2()
		}
	} else {
		switch t {
		case tRedisHashMetadataPreGA, tRedisHashMetadata:
			return r.redisHashMetadata(t == tRedisHashMetadata)
		case tRedisHashListpackExPreGA, tRedisHashListpackEx:
			if t == tRedisHashListpackEx {
				if _, err := r.millis(); err != nil { // the minimum TTL, a hint
					return err
				}
			}
			return r.blobHash(true, true)
		}
	}
	return r.unknownOpcode(t)
}

// --- chunk assembly ---

func (r *Reader) full(n int) bool {
	return n >= r.opts.MaxChunkElems || r.chunkBytes >= r.opts.MaxChunkBytes
}

func (r *Reader) addElem(e []byte) error {
	ev := &r.evElems
	ev.Elems = append(ev.Elems, e)
	r.chunkBytes += len(e)
	if r.full(len(ev.Elems)) {
		return r.flushElems()
	}
	return nil
}

func (r *Reader) flushElems() error {
	ev := &r.evElems
	if len(ev.Elems) == 0 {
		return nil
	}
	err := r.emit(ev)
	clear(ev.Elems)
	ev.Elems = ev.Elems[:0]
	r.endChunk()
	return err
}

func (r *Reader) endChunk() {
	r.chunkBytes = 0
	r.ea.reset()
}

func (r *Reader) addField(f, v []byte, ttl bool, exp int64) error {
	ev := &r.evHash
	ev.Fields = append(ev.Fields, f)
	ev.Values = append(ev.Values, v)
	if ttl {
		ev.ExpireAtMs = append(ev.ExpireAtMs, exp)
	}
	r.chunkBytes += len(f) + len(v)
	if r.full(len(ev.Fields)) {
		return r.flushHash()
	}
	return nil
}

func (r *Reader) flushHash() error {
	ev := &r.evHash
	if len(ev.Fields) == 0 {
		return nil
	}
	err := r.emit(ev)
	clear(ev.Fields)
	clear(ev.Values)
	ev.Fields, ev.Values = ev.Fields[:0], ev.Values[:0]
	if ev.ExpireAtMs != nil {
		ev.ExpireAtMs = ev.ExpireAtMs[:0]
	}
	r.endChunk()
	return err
}

func (r *Reader) addMember(m []byte, score float64) error {
	ev := &r.evZSet
	ev.Members = append(ev.Members, m)
	ev.Scores = append(ev.Scores, score)
	r.chunkBytes += len(m) + 8
	if r.full(len(ev.Members)) {
		return r.flushZSet()
	}
	return nil
}

func (r *Reader) flushZSet() error {
	ev := &r.evZSet
	if len(ev.Members) == 0 {
		return nil
	}
	err := r.emit(ev)
	clear(ev.Members)
	ev.Members, ev.Scores = ev.Members[:0], ev.Scores[:0]
	r.endChunk()
	return err
}

// elem reads one element string into the chunk arena.
func (r *Reader) elem(what string) ([]byte, error) {
	return r.readStr(&r.ea, r.opts.MaxElemBytes, what)
}

// --- strings ---

func (r *Reader) stringValue() error {
	ev := &r.evString
	n, enc, err := r.rawLength()
	if err != nil {
		return err
	}
	if enc {
		if n != encLZF {
			v, err := r.readEncInt(n)
			if err != nil {
				return err
			}
			r.seen.intStrings++
			r.piece = strconv.AppendInt(r.piece[:0], v, 10)
			text := r.piece
			*ev = StringChunk{Total: int64(len(text))}
			for len(text) > 0 {
				ev.Data = text[:min(len(text), r.opts.MaxChunkBytes)]
				if err := r.emit(ev); err != nil {
					return err
				}
				text = text[len(ev.Data):]
				ev.Offset += int64(len(ev.Data))
			}
			return nil
		}
		r.seen.lzfStrings++
		clen, ulen, err := r.lzfLengths()
		if err != nil {
			return err
		}
		if ulen > math.MaxInt64 {
			return r.errf(ErrCorrupt, "string of %d bytes", ulen)
		}
		*ev = StringChunk{Total: int64(ulen)}
		return r.lzfStream(clen, ulen, r.opts.MaxChunkBytes, func(p []byte) error {
			ev.Data = p
			err := r.emit(ev)
			ev.Offset += int64(len(p))
			return err
		})
	}
	if n > math.MaxInt64 {
		return r.errf(ErrCorrupt, "string of %d bytes", n)
	}
	*ev = StringChunk{Total: int64(n)}
	if n == 0 {
		ev.Data = r.piece[:0]
		return r.emit(ev)
	}
	size := r.opts.MaxChunkBytes
	if uint64(size) > n {
		size = int(n)
	}
	if c := min(size, smallRead); cap(r.piece) < c {
		r.piece = make([]byte, 0, c) // then grown as data arrives
	}
	for left := n; left > 0; {
		p := r.piece[:0]
		for len(p) < size && left > 0 {
			if err := r.fill(1); err != nil {
				return err
			}
			k := min(uint64(r.end-r.pos), left, uint64(size-len(p)))
			p = append(p, r.buf[r.pos:r.pos+int(k)]...)
			r.pos += int(k) // no tee: parsed mode
			left -= k
		}
		r.piece = p
		ev.Data = p
		if err := r.emit(ev); err != nil {
			return err
		}
		ev.Offset += int64(len(p))
	}
	if cap(r.piece) > 4*smallRead {
		r.piece = nil
	}
	return nil
}

// --- plain collections ---

func (r *Reader) plainElems() error {
	n, err := r.length("element count")
	if err != nil {
		return err
	}
	for range n {
		e, err := r.elem("element")
		if err != nil {
			return err
		}
		if err := r.addElem(e); err != nil {
			return err
		}
	}
	return r.flushElems()
}

// hashStart prepares the hash chunk for a key: ExpireAtMs is nil unless
// the encoding carries field TTLs.
func (r *Reader) hashStart(ttl bool) {
	ev := &r.evHash
	if ev.ExpireAtMs != nil {
		r.expBuf = ev.ExpireAtMs[:0]
	}
	ev.ExpireAtMs = nil
	if ttl {
		if r.expBuf == nil {
			r.expBuf = make([]int64, 0, 64)
		}
		ev.ExpireAtMs = r.expBuf[:0]
	}
}

func (r *Reader) plainHash(ttl bool) error {
	r.hashStart(ttl)
	n, err := r.length("field count")
	if err != nil {
		return err
	}
	for range n {
		f, err := r.elem("hash field")
		if err != nil {
			return err
		}
		v, err := r.elem("hash value")
		if err != nil {
			return err
		}
		if err := r.addField(f, v, ttl, NoExpire); err != nil {
			return err
		}
	}
	return r.flushHash()
}

func (r *Reader) valkeyHash2() error {
	r.hashStart(true)
	n, err := r.length("field count")
	if err != nil {
		return err
	}
	for range n {
		f, err := r.elem("hash field")
		if err != nil {
			return err
		}
		v, err := r.elem("hash value")
		if err != nil {
			return err
		}
		exp, err := r.millis()
		if err != nil {
			return err
		}
		if exp < 0 {
			exp = NoExpire
		}
		if err := r.addField(f, v, true, exp); err != nil {
			return err
		}
	}
	return r.flushHash()
}

// redisHashMetadata reads RDB_TYPE_HASH_METADATA (withMin: a minimum
// expiry, then per field a TTL relative to it, +1, 0 for none) and its
// pre-GA form (per field an absolute expiry, 0 for none).
func (r *Reader) redisHashMetadata(withMin bool) error {
	r.hashStart(true)
	var minExp int64
	if withMin {
		var err error
		if minExp, err = r.millis(); err != nil {
			return err
		}
	}
	n, err := r.length("field count")
	if err != nil {
		return err
	}
	for range n {
		t, err := r.length("field TTL")
		if err != nil {
			return err
		}
		exp := NoExpire
		if t != 0 {
			if withMin {
				exp = minExp + int64(t) - 1
			} else {
				exp = int64(t)
			}
		}
		f, err := r.elem("hash field")
		if err != nil {
			return err
		}
		v, err := r.elem("hash value")
		if err != nil {
			return err
		}
		if err := r.addField(f, v, true, exp); err != nil {
			return err
		}
	}
	return r.flushHash()
}

func (r *Reader) plainZSet(binaryScores bool) error {
	n, err := r.length("member count")
	if err != nil {
		return err
	}
	for range n {
		m, err := r.elem("sorted set member")
		if err != nil {
			return err
		}
		var score float64
		if binaryScores {
			u, err := r.u64le()
			if err != nil {
				return err
			}
			score = math.Float64frombits(u)
		} else if score, err = r.textScore(); err != nil {
			return err
		}
		if math.IsNaN(score) {
			return r.errf(ErrCorrupt, "NaN score")
		}
		if err := r.addMember(m, score); err != nil {
			return err
		}
	}
	return r.flushZSet()
}

// textScore reads a score of RDB_TYPE_ZSET: a length byte (253 NaN, 254
// +inf, 255 -inf) and that much text.
func (r *Reader) textScore() (float64, error) {
	l, err := r.readByte()
	if err != nil {
		return 0, err
	}
	switch l {
	case 253:
		return math.NaN(), nil
	case 254:
		return math.Inf(1), nil
	case 255:
		return math.Inf(-1), nil
	}
	p, err := r.take(int(l))
	if err != nil {
		return 0, err
	}
	f, perr := strconv.ParseFloat(string(p), 64)
	if perr != nil {
		return 0, r.errf(ErrCorrupt, "bad score %q", p)
	}
	return f, nil
}

// --- blob encodings ---

// readBlob reads a string holding a compact encoding, whole, into the
// reused blob buffer (valid until the next readBlob).
func (r *Reader) readBlob(what string) ([]byte, error) {
	if cap(r.blobBuf) > 4*smallRead {
		r.blobBuf = nil
	}
	limit := uint64(r.opts.MaxBlobBytes)
	n, enc, err := r.rawLength()
	if err != nil {
		return nil, err
	}
	if enc {
		if n != encLZF {
			return nil, r.errf(ErrCorrupt, "integer-encoded %s", what)
		}
		r.seen.lzfBlobs++
		clen, ulen, err := r.lzfLengths()
		if err != nil {
			return nil, err
		}
		if clen > limit || ulen > limit {
			return nil, r.errf(ErrTooLarge, "%s of %d bytes (LZF) over the limit of %d (MaxBlobBytes)", what, ulen, limit)
		}
		if r.lzfIn, err = r.appendN(r.lzfIn[:0], clen); err != nil {
			return nil, err
		}
		if uint64(cap(r.blobBuf)) < ulen {
			r.blobBuf = make([]byte, ulen)
		}
		out := r.blobBuf[:ulen]
		ok := rdbvalue.LZFDecompress(r.lzfIn, out)
		if cap(r.lzfIn) > 4*smallRead {
			r.lzfIn = nil
		}
		if !ok {
			return nil, r.errf(ErrCorrupt, "bad LZF data in %s", what)
		}
		return out, nil
	}
	if n > limit {
		return nil, r.errf(ErrTooLarge, "%s of %d bytes over the limit of %d (MaxBlobBytes)", what, n, limit)
	}
	if n <= uint64(cap(r.blobBuf)) || n <= smallRead {
		if uint64(cap(r.blobBuf)) < n {
			r.blobBuf = make([]byte, n)
		}
		b := r.blobBuf[:n]
		return b, r.readFull(b)
	}
	r.blobBuf, err = r.appendN(r.blobBuf[:0], n)
	return r.blobBuf, err
}

// blobIter is a listpack or a ziplist.
type blobIter interface {
	Next() (s []byte, v int64, isInt, ok bool, err error)
}

func (r *Reader) openBlob(b []byte, isListpack bool, what string) (blobIter, error) {
	var err error
	if isListpack {
		if r.lp, err = rdbvalue.OpenListpack(b); err != nil {
			return nil, r.errf(ErrCorrupt, "%s: %v", what, err)
		}
		return &r.lp, nil
	}
	if r.zl, err = rdbvalue.OpenZiplist(b); err != nil {
		return nil, r.errf(ErrCorrupt, "%s: %v", what, err)
	}
	return &r.zl, nil
}

// text returns an entry of a blob as bytes in the chunk arena.
func (r *Reader) text(s []byte, v int64, isInt bool) []byte {
	if isInt {
		return r.ea.int(v)
	}
	return r.ea.copy(s)
}

// blobNext reads the next entry of it; ok is false at its end.
func (r *Reader) blobNext(it blobIter, what string) ([]byte, bool, error) {
	s, v, isInt, ok, err := it.Next()
	if err != nil {
		return nil, false, r.errf(ErrCorrupt, "%s: %v", what, err)
	}
	if !ok {
		return nil, false, nil
	}
	return r.text(s, v, isInt), true, nil
}

// blobElems reads a list or set stored as one listpack or ziplist.
func (r *Reader) blobElems(isListpack bool, what string) error {
	b, err := r.readBlob(what)
	if err != nil {
		return err
	}
	if err := r.iterElems(b, isListpack, what); err != nil {
		return err
	}
	return r.flushElems()
}

func (r *Reader) iterElems(b []byte, isListpack bool, what string) error {
	it, err := r.openBlob(b, isListpack, what)
	if err != nil {
		return err
	}
	for {
		e, ok, err := r.blobNext(it, what)
		if err != nil || !ok {
			return err
		}
		if err := r.addElem(e); err != nil {
			return err
		}
	}
}

func (r *Reader) intsetElems() error {
	b, err := r.readBlob("intset")
	if err != nil {
		return err
	}
	is, err := rdbvalue.OpenIntset(b)
	if err != nil {
		return r.errf(ErrCorrupt, "intset: %v", err)
	}
	for {
		v, ok := is.Next()
		if !ok {
			break
		}
		if err := r.addElem(r.ea.int(v)); err != nil {
			return err
		}
	}
	return r.flushElems()
}

func (r *Reader) quicklist(v2 bool) error {
	n, err := r.length("quicklist node count")
	if err != nil {
		return err
	}
	for range n {
		container := uint64(qlPacked)
		if v2 {
			if container, err = r.length("quicklist container"); err != nil {
				return err
			}
		}
		switch container {
		case qlPlain:
			r.seen.plainNodes++
			e, err := r.elem("list element")
			if err != nil {
				return err
			}
			if err := r.addElem(e); err != nil {
				return err
			}
		case qlPacked:
			r.seen.packedNodes++
			what := "quicklist ziplist node"
			if v2 {
				what = "quicklist listpack node"
			}
			b, err := r.readBlob(what)
			if err != nil {
				return err
			}
			if err := r.iterElems(b, v2, what); err != nil {
				return err
			}
		default:
			return r.errf(ErrCorrupt, "bad quicklist node container %d", container)
		}
	}
	return r.flushElems()
}

// blobHash reads a hash stored as one listpack or ziplist of field,
// value pairs; ttl: of field, value, expiry triplets (Redis's
// HASH_LISTPACK_EX, expiry 0 for none).
func (r *Reader) blobHash(isListpack, ttl bool) error {
	what := "hash ziplist"
	if isListpack {
		what = "hash listpack"
	}
	r.hashStart(ttl)
	b, err := r.readBlob(what)
	if err != nil {
		return err
	}
	it, err := r.openBlob(b, isListpack, what)
	if err != nil {
		return err
	}
	for {
		f, ok, err := r.blobNext(it, what)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		v, ok, err := r.blobNext(it, what)
		if err != nil {
			return err
		}
		if !ok {
			return r.errf(ErrCorrupt, "%s: field without a value", what)
		}
		exp := NoExpire
		if ttl {
			s, iv, isInt, ok, err := it.Next()
			if err != nil {
				return r.errf(ErrCorrupt, "%s: %v", what, err)
			}
			if !ok {
				return r.errf(ErrCorrupt, "%s: field without an expiry", what)
			}
			if !isInt {
				if iv, err = strconv.ParseInt(string(s), 10, 64); err != nil {
					return r.errf(ErrCorrupt, "%s: bad field expiry %q", what, s)
				}
			}
			if iv > 0 {
				exp = iv
			}
		}
		if err := r.addField(f, v, ttl, exp); err != nil {
			return err
		}
	}
	return r.flushHash()
}

func (r *Reader) zipmapHash() error {
	r.hashStart(false)
	b, err := r.readBlob("zipmap")
	if err != nil {
		return err
	}
	zm, err := rdbvalue.OpenZipmap(b)
	if err != nil {
		return r.errf(ErrCorrupt, "zipmap: %v", err)
	}
	for {
		f, v, ok, err := zm.Next()
		if err != nil {
			return r.errf(ErrCorrupt, "zipmap: %v", err)
		}
		if !ok {
			break
		}
		if err := r.addField(r.ea.copy(f), r.ea.copy(v), false, 0); err != nil {
			return err
		}
	}
	return r.flushHash()
}

func (r *Reader) blobZSet(isListpack bool) error {
	what := "sorted set ziplist"
	if isListpack {
		what = "sorted set listpack"
	}
	b, err := r.readBlob(what)
	if err != nil {
		return err
	}
	it, err := r.openBlob(b, isListpack, what)
	if err != nil {
		return err
	}
	for {
		m, ok, err := r.blobNext(it, what)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		s, v, isInt, ok, err := it.Next()
		if err != nil {
			return r.errf(ErrCorrupt, "%s: %v", what, err)
		}
		if !ok {
			return r.errf(ErrCorrupt, "%s: member without a score", what)
		}
		score := float64(v)
		if !isInt {
			if score, err = strconv.ParseFloat(string(s), 64); err != nil || math.IsNaN(score) {
				return r.errf(ErrCorrupt, "%s: bad score %q", what, s)
			}
		}
		if err := r.addMember(m, score); err != nil {
			return err
		}
	}
	return r.flushZSet()
}

// be64 reads a big-endian uint64 of a 16-byte stream ID.
func be64(p []byte) uint64 { return binary.BigEndian.Uint64(p) }
