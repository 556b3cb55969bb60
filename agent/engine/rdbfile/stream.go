package rdbfile

import (
	"strconv"

	"github.com/redback-dev/redback/agent/engine/rdbvalue"
)

// Streams (RDB_TYPE_STREAM_LISTPACKS, _2, _3).
//
// The value: the number of nodes; per node its master ID (16 bytes, big
// endian ms and seq) and a listpack; then the length, the last ID, for
// types 19+ the first ID, the max deleted ID and entries-added; the
// consumer groups: name, last delivered ID, for 19+ entries-read; the PEL
// (16-byte ID, delivery time ms, delivery count); the consumers: name,
// seen time, for 21 active time, and their PEL (16-byte IDs).
//
// A node's listpack starts with the master entry: count (live entries),
// deleted, the number of master fields, the master fields, 0. Then each
// entry: flags, ms and seq deltas from the master ID, either (same fields
// flag) the values of the master fields or a field count and field, value
// pairs, and the number of listpack entries the entry took.

type lpVal struct {
	s     []byte
	v     int64
	isInt bool
}

func (r *Reader) stream(t byte) error {
	nodes, err := r.length("stream node count")
	if err != nil {
		return err
	}
	for range nodes {
		r.na.reset()
		key, err := r.readStr(&r.na, 64, "stream node key")
		if err != nil {
			return err
		}
		if len(key) != 16 {
			return r.errf(ErrCorrupt, "stream node key of %d bytes", len(key))
		}
		master := StreamID{be64(key), be64(key[8:])}
		b, err := r.readBlob("stream listpack")
		if err != nil {
			return err
		}
		if err := r.streamNode(master, b); err != nil {
			return err
		}
	}
	if err := r.flushEntries(); err != nil {
		return err
	}

	meta := &r.evMeta
	*meta = StreamMeta{}
	var v [5]uint64
	if err := r.lengths(v[:3], "stream metadata"); err != nil {
		return err
	}
	meta.Length, meta.LastID = v[0], StreamID{v[1], v[2]}
	if t >= tStreamListpacks2 {
		if err := r.lengths(v[:5], "stream metadata"); err != nil {
			return err
		}
		meta.HasV2Meta = true
		meta.FirstID, meta.MaxDeletedID, meta.EntriesAdded = StreamID{v[0], v[1]}, StreamID{v[2], v[3]}, v[4]
	}
	if meta.Groups, err = r.length("consumer group count"); err != nil {
		return err
	}
	if err := r.emit(meta); err != nil {
		return err
	}
	for range meta.Groups {
		if err := r.streamGroup(t); err != nil {
			return err
		}
	}
	return nil
}

func (r *Reader) lengths(v []uint64, what string) error {
	for i := range v {
		var err error
		if v[i], err = r.length(what); err != nil {
			return err
		}
	}
	return nil
}

func (r *Reader) streamNode(master StreamID, b []byte) error {
	const what = "stream listpack"
	lp, err := rdbvalue.OpenListpack(b)
	if err != nil {
		return r.errf(ErrCorrupt, "%s: %v", what, err)
	}
	val := func(name string) (lpVal, error) {
		s, v, isInt, ok, err := lp.Next()
		if err != nil {
			return lpVal{}, r.errf(ErrCorrupt, "%s: %v", what, err)
		}
		if !ok {
			return lpVal{}, r.errf(ErrCorrupt, "%s: missing %s", what, name)
		}
		return lpVal{s, v, isInt}, nil
	}
	num := func(name string) (int64, error) {
		x, err := val(name)
		if err != nil || x.isInt {
			return x.v, err
		}
		n, perr := strconv.ParseInt(string(x.s), 10, 64)
		if perr != nil {
			return 0, r.errf(ErrCorrupt, "%s: %s is not a number", what, name)
		}
		return n, nil
	}
	var hdr [3]int64
	for i, name := range [...]string{"entry count", "deleted count", "master field count"} {
		if hdr[i], err = num(name); err != nil {
			return err
		}
		if hdr[i] < 0 {
			return r.errf(ErrCorrupt, "%s: negative %s", what, name)
		}
	}
	masterFields := r.tmp[:0]
	for range hdr[2] {
		x, err := val("master field")
		if err != nil {
			return err
		}
		masterFields = append(masterFields, x)
	}
	nmf := len(masterFields)
	if z, err := num("master entry terminator"); err != nil {
		return err
	} else if z != 0 {
		return r.errf(ErrCorrupt, "%s: bad master entry terminator", what)
	}
	fv := masterFields // master fields, then the current entry's items
	var live, dead int64
	for lp.More() {
		flags, err := num("entry flags")
		if err != nil {
			return err
		}
		msd, err := num("entry ID")
		if err != nil {
			return err
		}
		seqd, err := num("entry ID")
		if err != nil {
			return err
		}
		same := flags&streamItemSameFields != 0
		fv = fv[:nmf]
		nf := int64(nmf)
		if same {
			for range nmf {
				x, err := val("entry value")
				if err != nil {
					return err
				}
				fv = append(fv, x)
			}
		} else {
			if nf, err = num("entry field count"); err != nil {
				return err
			}
			if nf < 0 || nf > int64(len(b)) {
				return r.errf(ErrCorrupt, "%s: bad field count %d", what, nf)
			}
			for range 2 * nf {
				x, err := val("entry field")
				if err != nil {
					return err
				}
				fv = append(fv, x)
			}
		}
		if _, err := num("entry size"); err != nil {
			return err
		}
		if flags&streamItemDeleted != 0 {
			dead++
			continue
		}
		live++
		id := StreamID{master.Ms + uint64(msd), master.Seq + uint64(seqd)}
		items := fv[nmf:]
		n := int(nf)
		start := len(r.flat)
		for i := range n { // fields
			var x lpVal
			if same {
				x = masterFields[i]
			} else {
				x = items[2*i]
			}
			r.flat = append(r.flat, r.text(x.s, x.v, x.isInt))
		}
		for i := range n { // values
			var x lpVal
			if same {
				x = items[i]
			} else {
				x = items[2*i+1]
			}
			r.flat = append(r.flat, r.text(x.s, x.v, x.isInt))
		}
		for _, e := range r.flat[start:] {
			r.chunkBytes += len(e)
		}
		ev := &r.evEntries
		ev.Entries = append(ev.Entries, StreamEntry{
			ID:     id,
			Fields: r.flat[start : start+n : start+n],
			Values: r.flat[start+n : start+2*n : start+2*n],
		})
		if r.full(len(ev.Entries)) || len(r.flat) >= 2*r.opts.MaxChunkElems {
			if err := r.flushEntries(); err != nil {
				return err
			}
		}
	}
	r.tmp = fv[:0]
	if _, _, _, _, err := lp.Next(); err != nil {
		return r.errf(ErrCorrupt, "%s: %v", what, err)
	}
	if live != hdr[0] || dead != hdr[1] {
		return r.errf(ErrCorrupt, "%s: %d live and %d deleted entries, the header says %d and %d",
			what, live, dead, hdr[0], hdr[1])
	}
	return nil
}

func (r *Reader) flushEntries() error {
	ev := &r.evEntries
	if len(ev.Entries) == 0 {
		return nil
	}
	err := r.emit(ev)
	clear(ev.Entries)
	clear(r.flat)
	ev.Entries, r.flat = ev.Entries[:0], r.flat[:0]
	r.endChunk()
	return err
}

func (r *Reader) rawID() (StreamID, error) {
	p, err := r.take(16)
	if err != nil {
		return StreamID{}, err
	}
	return StreamID{be64(p), be64(p[8:])}, nil
}

func (r *Reader) streamGroup(t byte) error {
	r.na.reset()
	name, err := r.readStr(&r.na, r.opts.MaxBlobBytes, "consumer group name")
	if err != nil {
		return err
	}
	g := &r.evGroup
	*g = StreamGroup{Name: name, EntriesRead: -1}
	var v [2]uint64
	if err := r.lengths(v[:], "consumer group last ID"); err != nil {
		return err
	}
	g.LastID = StreamID{v[0], v[1]}
	if t >= tStreamListpacks2 {
		er, err := r.length("consumer group entries read")
		if err != nil {
			return err
		}
		g.EntriesRead = int64(er) // the server's -1 is stored as 2^64-1
	}
	if g.Pending, err = r.length("PEL size"); err != nil {
		return err
	}
	if err := r.emit(g); err != nil {
		return err
	}
	pe := &r.evPending
	for range g.Pending {
		id, err := r.rawID()
		if err != nil {
			return err
		}
		dt, err := r.millis()
		if err != nil {
			return err
		}
		n, err := r.length("delivery count")
		if err != nil {
			return err
		}
		pe.Entries = append(pe.Entries, PendingEntry{ID: id, DeliveryTimeMs: dt, DeliveryCount: n})
		if len(pe.Entries) >= r.opts.MaxChunkElems || 32*len(pe.Entries) >= r.opts.MaxChunkBytes {
			if err := r.flushPending(); err != nil {
				return err
			}
		}
	}
	if err := r.flushPending(); err != nil {
		return err
	}
	nc, err := r.length("consumer count")
	if err != nil {
		return err
	}
	for i := range nc {
		r.na.reset()
		name, err := r.readStr(&r.na, r.opts.MaxBlobBytes, "consumer name")
		if err != nil {
			return err
		}
		c := &r.evConsumer
		*c = StreamConsumer{Name: name, Index: i, Count: nc, ActiveTimeMs: -1}
		if c.SeenTimeMs, err = r.millis(); err != nil {
			return err
		}
		if t >= tStreamListpacks3 {
			if c.ActiveTimeMs, err = r.millis(); err != nil {
				return err
			}
		}
		if c.Pending, err = r.length("consumer PEL size"); err != nil {
			return err
		}
		if err := r.emit(c); err != nil {
			return err
		}
		cp := &r.evConsPEL
		for range c.Pending {
			id, err := r.rawID()
			if err != nil {
				return err
			}
			cp.IDs = append(cp.IDs, id)
			if len(cp.IDs) >= r.opts.MaxChunkElems || 16*len(cp.IDs) >= r.opts.MaxChunkBytes {
				if err := r.flushConsPEL(); err != nil {
					return err
				}
			}
		}
		if err := r.flushConsPEL(); err != nil {
			return err
		}
	}
	return nil
}

func (r *Reader) flushPending() error {
	ev := &r.evPending
	if len(ev.Entries) == 0 {
		return nil
	}
	err := r.emit(ev)
	ev.Entries = ev.Entries[:0]
	return err
}

func (r *Reader) flushConsPEL() error {
	ev := &r.evConsPEL
	if len(ev.IDs) == 0 {
		return nil
	}
	err := r.emit(ev)
	ev.IDs = ev.IDs[:0]
	return err
}
