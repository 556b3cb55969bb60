// Big keys read in windows (GETRANGE, HSCAN, SSCAN, LRANGE, ZRANGE), read
// ahead of the writer (fetchAhead).

package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/codec"
)

// writeBig reads one big key in windows and writes it. It reports false when
// the key vanished before anything was written.
func (d *Dumper) writeBig(ctx context.Context, c *redis.Client, db int, w KeyWriter, m keyMeta) (bool, int64, error) {
	// Re-read type and TTL now: the batch may be old.
	raw, err := c.DoRaw(ctx, "PTTL", m.key).Bytes()
	if err != nil {
		return false, 0, wrapRedis("PTTL", err)
	}
	pv, _, _, err := parseBulk(raw)
	if err != nil {
		return false, 0, wrapRedis("PTTL", err)
	}
	m.pttl, _ = strconv.ParseInt(string(pv), 10, 64)
	if m.pttl == -2 || m.pttl == 0 {
		return false, 0, nil
	}
	readAt := d.opt.Now()
	h := d.header(db, m, readAt)
	switch m.typ {
	case codec.TypeString:
		return d.writeBigString(ctx, c, w, h)
	case codec.TypeStream:
		return d.writeStream(ctx, c, w, h)
	case codec.TypeHash:
		h.HashAsPairs = true
		ok, n, err := d.writeScanned(ctx, c, w, h, "HSCAN", 2)
		return ok, n, err
	case codec.TypeSet:
		return d.writeScanned(ctx, c, w, h, "SSCAN", 1)
	case codec.TypeList, codec.TypeZSet:
		return d.writeRanged(ctx, c, w, h)
	}
	return false, 0, fmt.Errorf("unexpected type %v", m.typ)
}

// writeBigString reads a string in GETRANGE windows twice: once to learn
// whether it is valid UTF-8 (which decides its encoding in the archive), once
// to write it.
func (d *Dumper) writeBigString(ctx context.Context, c *redis.Client, w KeyWriter, h codec.KeyHeader) (bool, int64, error) {
	var tc codec.TextChecker
	var total int64
	err := d.stringWindows(ctx, c, h.Key, func(p []byte) error {
		_, _ = tc.Write(p)
		total += int64(len(p))
		return nil
	})
	if err != nil {
		return false, 0, err
	}
	if total == 0 {
		// An empty string, or a key gone: GETRANGE answers "" for both.
		n, err := c.Exists(ctx, string(h.Key)).Result()
		if err != nil {
			return false, 0, wrapRedis("EXISTS", err)
		}
		if n == 0 {
			return false, 0, nil
		}
		if err := w.BeginKey(h); err != nil {
			return false, 0, err
		}
		if err := w.WriteString(nil); err != nil {
			return false, 0, err
		}
		return true, 0, w.EndKey()
	}
	h.StringBase64 = !tc.IsText()
	if err := w.BeginKey(h); err != nil {
		return false, 0, err
	}
	if err := d.stringWindows(ctx, c, h.Key, w.WriteStringPart); err != nil {
		return false, 0, err
	}
	if err := w.EndKey(); err != nil {
		if errors.Is(err, codec.ErrStringForm) {
			return false, 0, fmt.Errorf("the value changed while it was read; take the backup again: %w", err)
		}
		return false, 0, err
	}
	return true, 2 * total, nil
}

func (d *Dumper) stringWindows(ctx context.Context, c *redis.Client, key []byte, fn func([]byte) error) error {
	for off := int64(0); ; off += d.opt.StringWindow {
		raw, err := c.DoRaw(ctx, "GETRANGE", key, off, off+d.opt.StringWindow-1).Bytes()
		if err != nil {
			return wrapRedis("GETRANGE", err)
		}
		v, _, _, err := parseBulk(raw)
		if err != nil {
			return wrapRedis("GETRANGE", err)
		}
		if len(v) == 0 {
			return nil
		}
		if err := fn(v); err != nil {
			return err
		}
		if int64(len(v)) < d.opt.StringWindow {
			return nil
		}
	}
}

// scanWindow is one HSCAN or SSCAN reply, with the HPEXPIRETIME reply for
// its fields when field TTLs are read.
type scanWindow struct{ raw, ttls []byte }

// writeScanned writes a hash (HSCAN, pairs) or a set (SSCAN). On servers
// with hash field TTLs, each window's fields have their expiry read right
// after the window.
func (d *Dumper) writeScanned(ctx context.Context, c *redis.Client, w KeyWriter, h codec.KeyHeader, cmd string, step int) (bool, int64, error) {
	withTTLs := step == 2 && d.fieldTTLs
	h.FieldTTLs = withTTLs
	var cursor uint64
	var fields [][]byte
	windows, stop := fetchAhead(ctx, 4, func(ctx context.Context) (scanWindow, bool, error) {
		raw, err := c.DoRaw(ctx, cmd, h.Key, cursor, "COUNT", d.opt.Window).Bytes()
		if err != nil {
			return scanWindow{}, false, wrapRedis(cmd, err)
		}
		var next uint64
		next, fields, err = parseScan(raw, fields[:0])
		if err != nil {
			return scanWindow{raw: raw}, false, nil // the writer reports it
		}
		cursor = next
		win := scanWindow{raw: raw}
		if withTTLs && len(fields) >= 2 {
			win.ttls, err = c.DoRaw(ctx, fieldTTLArgs(h.Key, fields)...).Bytes()
			if err != nil {
				return scanWindow{}, false, wrapRedis("HPEXPIRETIME", err)
			}
		}
		return win, next != 0, nil
	})
	defer stop()
	started := false
	var bytes int64
	var items [][]byte
	for win := range windows {
		if win.err != nil {
			return false, 0, win.err
		}
		bytes += int64(len(win.v.raw))
		var err error
		_, items, err = parseScan(win.v.raw, items[:0])
		if err != nil {
			if isWrongType(err) && !started {
				return false, bytes, nil // replaced meanwhile: next backup
			}
			return false, 0, wrapRedis(cmd, err)
		}
		var exp []int64
		if win.v.ttls != nil {
			all, err := parseFieldTTLs(win.v.ttls, len(items)/2)
			if err != nil {
				return false, 0, err
			}
			items, exp = applyFieldTTLs(items, all)
			if exp != nil {
				d.bigFieldTTLs = true
			}
		}
		if len(items) > 0 && !started {
			if err := w.BeginKey(h); err != nil {
				return false, 0, err
			}
			started = true
		}
		for i := 0; i+step-1 < len(items); i += step {
			switch {
			case exp != nil:
				err = w.WriteFieldExpire(items[i], items[i+1], exp[i/2])
			case step == 2:
				err = w.WriteField(items[i], items[i+1])
			default:
				err = w.WriteItem(items[i])
			}
			if err != nil {
				return false, 0, err
			}
		}
	}
	if !started {
		return false, bytes, nil
	}
	return true, bytes, w.EndKey()
}

// writeRanged writes a list (LRANGE windows) or a zset (ZRANGE windows, in
// score order).
func (d *Dumper) writeRanged(ctx context.Context, c *redis.Client, w KeyWriter, h codec.KeyHeader) (bool, int64, error) {
	win := int64(d.opt.Window)
	start := int64(0)
	windows, stop := fetchAhead(ctx, 4, func(ctx context.Context) ([]byte, bool, error) {
		var raw []byte
		var err error
		if h.Type == codec.TypeList {
			raw, err = c.DoRaw(ctx, "LRANGE", h.Key, start, start+win-1).Bytes()
		} else {
			raw, err = c.DoRaw(ctx, "ZRANGE", h.Key, start, start+win-1, "WITHSCORES").Bytes()
		}
		if err != nil {
			return nil, false, wrapRedis("range read", err)
		}
		start += win
		n, _, err := parseArrayHeader(raw)
		if err != nil {
			return raw, false, nil // the writer reports it
		}
		if h.Type == codec.TypeZSet {
			n /= 2
		}
		return raw, int64(n) == win, nil
	})
	defer stop()
	started := false
	var bytes int64
	var items [][]byte
	for wv := range windows {
		if wv.err != nil {
			return false, 0, wv.err
		}
		bytes += int64(len(wv.v))
		var err error
		items, _, err = parseBulkArray(wv.v, items[:0])
		if err != nil {
			if isWrongType(err) && !started {
				return false, bytes, nil
			}
			return false, 0, wrapRedis("range read", err)
		}
		if len(items) == 0 {
			break
		}
		if !started {
			if err := w.BeginKey(h); err != nil {
				return false, 0, err
			}
			started = true
		}
		if h.Type == codec.TypeList {
			for _, it := range items {
				if err := w.WriteItem(it); err != nil {
					return false, 0, err
				}
			}
		} else {
			for i := 0; i+1 < len(items); i += 2 {
				if err := w.WriteMember(items[i], items[i+1]); err != nil {
					return false, 0, err
				}
			}
		}
	}
	if !started {
		return false, bytes, nil
	}
	return true, bytes, w.EndKey()
}

// ahead is one prefetched window.
type ahead[T any] struct {
	v   T
	err error
}

// fetchAhead calls fetch in a goroutine, keeping up to depth results ready,
// so that reading a big key overlaps with writing it. fetch reports whether
// there is more. The caller must call stop when done (early or not).
func fetchAhead[T any](ctx context.Context, depth int, fetch func(context.Context) (T, bool, error)) (<-chan ahead[T], func()) {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan ahead[T], depth)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		for {
			var v T
			var more bool
			// Guarded: a panic in fetch is this dump's error, sent to the
			// writer like any other.
			err := guard(func() (err error) {
				v, more, err = fetch(ctx)
				return err
			})()
			select {
			case ch <- ahead[T]{v, err}:
			case <-ctx.Done():
				return
			}
			if err != nil || !more {
				return
			}
		}
	}()
	return ch, func() { cancel(); <-done }
}
