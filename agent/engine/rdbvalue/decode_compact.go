package rdbvalue

import "fmt"

// Decoding of the values stored as compact encodings (compact.go).

const (
	blobZiplist = iota
	blobListpack
	blobIntset
)

// blob reads a string holding a ziplist, listpack or intset and decodes it;
// pairs is 2 when the element count must be even.
func (d *decoder) blob(pairs int, format int) error {
	b, err := d.str()
	if err != nil {
		return err
	}
	start := len(d.out)
	switch format {
	case blobZiplist:
		err = d.ziplist(b)
	case blobListpack:
		err = d.listpack(b)
	default:
		err = d.intset(b)
	}
	if err != nil {
		return err
	}
	if pairs == 2 && (len(d.out)-start)%2 != 0 {
		return errOdd
	}
	return nil
}

func (d *decoder) quicklist(v2 bool) error {
	n, err := d.count(1)
	if err != nil {
		return err
	}
	for range n {
		container := uint64(quicklistNodePacked)
		if v2 {
			var enc bool
			if container, enc, err = d.length(); err != nil {
				return err
			}
			if enc {
				return corrupt("bad quicklist container")
			}
		}
		b, err := d.str()
		if err != nil {
			return err
		}
		switch {
		case container == quicklistNodePlain:
			d.out = append(d.out, b)
		case container != quicklistNodePacked:
			return corrupt("bad quicklist container")
		case v2:
			err = d.listpack(b)
		default:
			err = d.ziplist(b)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// badBlob wraps an error of a compact encoding's iterator.
func badBlob(err error) error { return fmt.Errorf("%w: %v", ErrCorrupt, err) }

func (d *decoder) intset(b []byte) error {
	is, err := OpenIntset(b)
	if err != nil {
		return badBlob(err)
	}
	d.grow(is.Len())
	for {
		v, ok := is.Next()
		if !ok {
			return nil
		}
		d.out = append(d.out, d.a.int(v))
	}
}

func (d *decoder) ziplist(b []byte) error { return d.entries(b, false) }

func (d *decoder) listpack(b []byte) error { return d.entries(b, true) }

// entries appends the entries of a listpack or a ziplist. Most of them
// take the inlined listpackShort or ziplistShort (a branch on isListpack
// per entry costs less than a call).
func (d *decoder) entries(b []byte, isListpack bool) error {
	var lp Listpack
	var zl Ziplist
	var err error
	n := 0
	if isListpack {
		lp, err = OpenListpack(b)
		n = lp.Len()
	} else {
		zl, err = OpenZiplist(b)
		n = zl.Len()
	}
	if err != nil {
		return badBlob(err)
	}
	if n >= 0 {
		d.grow(min(n, len(b)/2))
	}
	for {
		var s []byte
		var v int64
		var isInt, ok bool
		if isListpack {
			s, v, isInt, ok = lp.listpackShort()
		} else {
			s, v, isInt, ok = zl.ziplistShort()
		}
		if !ok {
			if isListpack {
				s, v, isInt, ok, err = lp.Next()
			} else {
				s, v, isInt, ok, err = zl.Next()
			}
			if !ok {
				if err != nil {
					return badBlob(err)
				}
				return nil
			}
		}
		if isInt {
			s = d.a.int(v)
		}
		d.out = append(d.out, s)
	}
}
