package rdbfile

// The structural walker: it reads past a value without interpreting more
// than its framing (lengths, strings, fixed-size fields). With the raw tee
// on it captures the value's bytes (RawChunk); with it off it skips them
// (SkipValue). Strings are never held: they are streamed through.

// skipValue reads past the value of RDB type t. For module types the
// module id has already been read.
func (r *Reader) skipValue(t byte) error {
	switch t {
	case tString, tHashZipmap, tListZiplist, tSetIntset, tZSetZiplist, tHashZiplist,
		tHashListpack, tZSetListpack, tSetListpack:
		return r.skipStr()
	case tList, tSet, tListQuicklist:
		return r.skipCounted(1, 0)
	case tHash:
		return r.skipCounted(2, 0)
	case tZSet:
		return r.skipTextZSet()
	case tZSet2:
		return r.skipCounted(1, 8)
	case tListQuicklist2:
		n, err := r.length("quicklist node count")
		if err != nil {
			return err
		}
		for range n {
			if _, err := r.length("quicklist container"); err != nil {
				return err
			}
			if err := r.skipStr(); err != nil {
				return err
			}
		}
		return nil
	case tModule2:
		return r.moduleBody()
	case tStreamListpacks, tStreamListpacks2, tStreamListpacks3:
		return r.skipStream(t)
	}
	if r.hdr.Dialect == DialectValkey {
		if t == tValkeyHash2 {
			return r.skipCounted(2, 8)
		}
	} else {
		switch t {
		case tRedisHashMetadataPreGA, tRedisHashMetadata:
			if t == tRedisHashMetadata {
				if err := r.discard(8); err != nil {
					return err
				}
			}
			n, err := r.length("field count")
			if err != nil {
				return err
			}
			for range n {
				if _, err := r.length("field TTL"); err != nil {
					return err
				}
				if err := r.skipStrs(2); err != nil {
					return err
				}
			}
			return nil
		case tRedisHashListpackExPreGA:
			return r.skipStr()
		case tRedisHashListpackEx:
			if err := r.discard(8); err != nil {
				return err
			}
			return r.skipStr()
		}
	}
	return r.unknownOpcode(t)
}

func (r *Reader) skipStrs(n int) error {
	for range n {
		if err := r.skipStr(); err != nil {
			return err
		}
	}
	return nil
}

// skipCounted reads past a count then count items of strs strings
// followed by fixed bytes.
func (r *Reader) skipCounted(strs int, fixed uint64) error {
	n, err := r.length("element count")
	if err != nil {
		return err
	}
	for range n {
		if err := r.skipStrs(strs); err != nil {
			return err
		}
		if fixed > 0 {
			if err := r.discard(fixed); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *Reader) skipTextZSet() error {
	n, err := r.length("member count")
	if err != nil {
		return err
	}
	for range n {
		if err := r.skipStr(); err != nil {
			return err
		}
		l, err := r.readByte()
		if err != nil {
			return err
		}
		if l < 253 {
			if err := r.discard(uint64(l)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *Reader) skipLengths(n int, what string) error {
	for range n {
		if _, err := r.length(what); err != nil {
			return err
		}
	}
	return nil
}

func (r *Reader) skipStream(t byte) error {
	n, err := r.length("stream node count")
	if err != nil {
		return err
	}
	for range n {
		if err := r.skipStrs(2); err != nil {
			return err
		}
	}
	meta := 3
	if t >= tStreamListpacks2 {
		meta = 8
	}
	if err := r.skipLengths(meta, "stream metadata"); err != nil {
		return err
	}
	groups, err := r.length("consumer group count")
	if err != nil {
		return err
	}
	for range groups {
		if err := r.skipStr(); err != nil {
			return err
		}
		g := 2
		if t >= tStreamListpacks2 {
			g = 3
		}
		if err := r.skipLengths(g, "consumer group"); err != nil {
			return err
		}
		pel, err := r.length("PEL size")
		if err != nil {
			return err
		}
		for range pel {
			if err := r.discard(24); err != nil {
				return err
			}
			if _, err := r.length("delivery count"); err != nil {
				return err
			}
		}
		nc, err := r.length("consumer count")
		if err != nil {
			return err
		}
		for range nc {
			if err := r.skipStr(); err != nil {
				return err
			}
			times := uint64(8)
			if t >= tStreamListpacks3 {
				times = 16
			}
			if err := r.discard(times); err != nil {
				return err
			}
			cp, err := r.length("consumer PEL size")
			if err != nil {
				return err
			}
			for range cp {
				if err := r.discard(16); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// moduleBody reads past the opcode-tagged values of a module value or
// module aux data, up to their EOF opcode.
func (r *Reader) moduleBody() error {
	for {
		op, err := r.length("module opcode")
		if err != nil {
			return err
		}
		switch op {
		case modOpEOF:
			return nil
		case modOpSInt, modOpUInt:
			if _, err := r.length("module integer"); err != nil {
				return err
			}
		case modOpFloat:
			if err := r.discard(4); err != nil {
				return err
			}
		case modOpDouble:
			if err := r.discard(8); err != nil {
				return err
			}
		case modOpString:
			if err := r.skipStr(); err != nil {
				return err
			}
		default:
			return r.errf(ErrCorrupt, "unknown module value opcode %d", op)
		}
	}
}
