package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"filippo.io/age"

	"github.com/redback-dev/redback/codec"
	"github.com/redback-dev/redback/internal/glob"
)

// Bytes is a byte string (a key, a field, a value) that marshals to JSON
// as an archive writes it (FORMAT.md "Byte strings": the text when it is
// valid UTF-8 not starting with a NUL, else "\u0000b64:" and base64).
type Bytes []byte

// MarshalJSON encodes b as FORMAT.md does.
func (b Bytes) MarshalJSON() ([]byte, error) { return codec.EncodeBytes(nil, b), nil }

// ReadOptions say how to open an archive that a look (keys, show, diff)
// reads.
type ReadOptions struct {
	// Identities decrypt age archives.
	Identities []age.Identity
	// Local lets the name be the path of a local file (IsPath; the
	// command line only).
	Local bool
}

// KeysOptions select the keys `redback keys` lists and page them.
type KeysOptions struct {
	ReadOptions
	Selection Selection
	// Cursor is where a page starts: the number of archive keys passed
	// before it (0: the start), as the previous page's KeysPage.Cursor
	// said. Limit ends the page after that many listed keys (0: no end).
	Cursor int64
	Limit  int
}

// KeyInfo describes one key of an archive (GET /api/backup/keys, `redback
// keys`).
type KeyInfo struct {
	DB  int   `json:"db"`
	Key Bytes `json:"key"`
	// Escaped is the key in the escaped form of the command line
	// (printable text as it is, \\ and \xHH for other bytes): what `show`
	// takes and, with glob specials escaped, a pattern that matches it.
	Escaped   string `json:"escaped"`
	Type      string `json:"type"`
	RedisType string `json:"redis_type,omitempty"`
	// TTL is the seed's: whole seconds left when the key was read, nil
	// when it has no expiry; PTTL the milliseconds, ExpireAt the absolute
	// expiry (Unix ms; 0 when the archive did not record one).
	TTL      *int64 `json:"ttl"`
	PTTL     int64  `json:"pttl,omitempty"`
	ExpireAt int64  `json:"expire_at,omitempty"`
	// Elements: a string's (or raw payload's) bytes; the fields of a hash,
	// items of a list or set, members of a zset, entries of a stream, as
	// the archive holds them.
	Elements int64 `json:"elements"`
	// Size is the key's share of the archive's JSON document (before gzip
	// and age): its bytes from the end of the key before it to the end of
	// its value.
	Size int64 `json:"size"`
}

// KeysPage is the end of a listing: how many keys were listed and where
// the next page starts.
type KeysPage struct {
	Filename string `json:"filename"`
	// Count is the number of keys listed; Scanned the archive's keys read.
	Count   int64 `json:"count"`
	Scanned int64 `json:"scanned"`
	// Cursor is where the next page starts, "0" when the listing reached
	// the end of the archive (whose checksum then matched).
	Cursor string `json:"cursor"`
	// Filter is the archive's own (backup.include/exclude): it holds only
	// the keys they selected. Nil for a whole backup.
	Filter *ArchiveFilter `json:"filter,omitempty"`
}

// ArchiveFilter is the selection a backup was taken with (FORMAT.md
// "filter").
type ArchiveFilter struct {
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
}

// KeysResult answers GET /api/backup/keys (a page); `redback keys --json`
// prints it with every key, streamed.
type KeysResult struct {
	Keys []KeyInfo `json:"keys"`
	KeysPage
	Success bool   `json:"success"`
	Error   string `json:"error,omitempty"`
}

// QuoteKey writes a byte string in the escaped form of the command line:
// printable text as it is, a backslash as \\, any other byte as \xHH.
func QuoteKey(b []byte) string { return glob.Quote(b) }

// UnquoteKey reads a key written as QuoteKey writes it.
func UnquoteKey(s string) ([]byte, error) { return glob.Unquote(s) }

// MaxKeysPage bounds KeysOptions.Limit for the API.
const MaxKeysPage = 10000

// Keys lists the keys of archive name (an archive name, Latest, or with
// o.Local a path) that o.Selection picks, calling fn for each in archive
// order, streaming: nothing but the key at hand is held. An error of fn
// stops the listing and is returned. Keys handed out are tentative until
// the archive's end (its checksum, gzip's CRC, age's MAC): a damaged
// archive fails at the end, after the keys before the damage.
func (s *Service) Keys(ctx context.Context, name string, o KeysOptions, fn func(KeyInfo) error) (KeysPage, error) {
	sel, err := o.Selection.compile()
	if err != nil {
		return KeysPage{}, err
	}
	if o.Cursor < 0 || o.Limit < 0 {
		return KeysPage{}, fmt.Errorf("%w: a negative cursor or limit", ErrInvalid)
	}
	a, release, err := s.resolve(ctx, name, o.Local)
	defer release()
	if err != nil {
		return KeysPage{}, err
	}
	page := KeysPage{Filename: a.Name, Cursor: "0"}
	err = s.walk(ctx, a, o.Identities, func(hdr codec.Header) { page.Filter = filterOf(hdr) }, func(k *walkedKey) (bool, error) {
		page.Scanned++
		if page.Scanned <= o.Cursor {
			return true, nil
		}
		if o.Limit > 0 && page.Count >= int64(o.Limit) {
			page.Scanned--
			page.Cursor = strconv.FormatInt(page.Scanned, 10)
			return false, nil
		}
		if !sel.picks(k.db, k.key, k.typ, k.raw) {
			return true, nil
		}
		page.Count++
		return true, fn(k.info())
	}, nil)
	return page, err
}

// filterOf returns the archive's backup filter, nil when it has none.
func filterOf(hdr codec.Header) *ArchiveFilter {
	if hdr.Filter == nil {
		return nil
	}
	f := &ArchiveFilter{}
	for _, p := range hdr.Filter.Include {
		f.Include = append(f.Include, glob.New(p).String())
	}
	for _, p := range hdr.Filter.Exclude {
		f.Exclude = append(f.Exclude, glob.New(p).String())
	}
	return f
}

// walkedKey is one key as walk has read it.
type walkedKey struct {
	db       int
	key      []byte
	typ      codec.Type
	raw      *codec.RawInfo
	elements int64
	size     int64
	last     *codec.Chunk // the last chunk (TTL, stream metadata)
}

func (k *walkedKey) info() KeyInfo {
	ki := KeyInfo{DB: k.db, Key: Bytes(append([]byte(nil), k.key...)), Escaped: glob.Quote(k.key), Type: typeName(k.typ), Elements: k.elements, Size: k.size}
	if k.raw != nil {
		ki.RedisType = k.raw.RedisType
	}
	if c := k.last; c != nil && c.HasTTL && c.PTTL > 0 {
		secs := (c.PTTL + 999) / 1000
		ki.TTL, ki.PTTL, ki.ExpireAt = &secs, c.PTTL, c.ExpireAt
	}
	return ki
}

// elementsOf counts the elements a chunk holds.
func elementsOf(c *codec.Chunk) int64 {
	switch c.Type {
	case codec.TypeString, codec.TypeRaw:
		var n int64
		for _, p := range c.Items {
			n += int64(len(p))
		}
		return n
	case codec.TypeHash, codec.TypeZSet:
		return int64(len(c.Items) / 2)
	case codec.TypeStream:
		return int64(len(c.Entries))
	}
	return int64(len(c.Items))
}

// walk reads archive a end to end (or until done returns false) and calls
// done once per key after its last chunk; chunk, when set, sees every
// chunk before. header, when set, sees the header first. The chunks and
// the walkedKey are valid only during the calls.
func (s *Service) walk(ctx context.Context, a archive, ids []age.Identity, header func(codec.Header), done func(*walkedKey) (bool, error), chunk func(*codec.Chunk) error) error {
	rc, err := s.open(ctx, a)
	if err != nil {
		return err
	}
	defer rc.Close()
	rd, err := s.openArchive(a.Name, rc, ids)
	if err != nil {
		return err
	}
	defer rd.Close()
	hdr, err := rd.Header()
	if err != nil {
		return translate(err)
	}
	if header != nil {
		header(hdr)
	}
	var k walkedKey
	prev := rd.Offset()
	for n := 0; ; n++ {
		if n&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		c, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return translate(err)
		}
		if c.First {
			k = walkedKey{db: c.DB, key: append(k.key[:0], c.Key...), typ: c.Type, raw: c.Raw}
		}
		k.elements += elementsOf(c)
		if chunk != nil {
			if err := chunk(c); err != nil {
				rd.Release(c)
				return err
			}
		}
		if c.Last {
			off := rd.Offset()
			k.size, prev = off-prev, off
			k.last = c
			more, err := done(&k)
			k.last = nil
			rd.Release(c)
			if err != nil || !more {
				return err
			}
			continue
		}
		rd.Release(c)
	}
	if err := rd.Close(); err != nil {
		return translate(err)
	}
	return nil
}

// ShowOptions tune `redback show`.
type ShowOptions struct {
	ReadOptions
	// Limit is the most elements shown (default 100); a string or raw
	// payload shows at most MaxShowBytes.
	Limit int
	// Out, when set, receives the whole value: a string's or raw
	// payload's bytes as they are; for other types one JSON array per
	// element and line (hash [field, value] or [field, value, expire_at],
	// list and set items as strings, zset [member, score], stream [id,
	// [field, value, ...]]), byte strings as FORMAT.md writes them.
	Out io.Writer
}

// MaxShowBytes is the most bytes of a string value that Show puts in its
// result (the whole value goes to ShowOptions.Out).
const MaxShowBytes = 64 << 10

// ShowResult answers GET /api/backup/show and `redback show`.
type ShowResult struct {
	Success  bool   `json:"success"`
	Filename string `json:"filename,omitempty"`
	KeyInfo
	// Value is the value (the first Limit elements): a byte string for a
	// string or raw key; an array of [field, value] (or [field, value,
	// expire_at]) for a hash; of items for a list or set; of [member,
	// score] for a zset; of [id, [field, value, ...]] for a stream.
	Value any `json:"value"`
	// Truncated says Value holds less than the whole value.
	Truncated bool `json:"truncated"`
	// Module and RDBVersion describe a raw payload.
	Module     string `json:"module,omitempty"`
	RDBVersion int    `json:"rdb_version,omitempty"`
	// Stream is a stream's metadata: last ID, groups with their
	// consumers and pending entries (each list cut at Limit).
	Stream *StreamInfo `json:"stream,omitempty"`
	Error  string      `json:"error,omitempty"`
}

// StreamInfo is a stream's metadata in a ShowResult.
type StreamInfo struct {
	LastID       Bytes       `json:"last_id"`
	EntriesAdded *int64      `json:"entries_added"`
	MaxDeletedID Bytes       `json:"max_deleted_id,omitempty"`
	Groups       []GroupInfo `json:"groups"`
}

// GroupInfo is one consumer group of a stream.
type GroupInfo struct {
	Name            Bytes          `json:"name"`
	LastDeliveredID Bytes          `json:"last_delivered_id"`
	EntriesRead     *int64         `json:"entries_read"`
	Consumers       []ConsumerInfo `json:"consumers"`
	Pending         [][4]any       `json:"pending"`
	// PendingCount is the length of the whole list (Pending may be cut).
	PendingCount int `json:"pending_count"`
}

// ConsumerInfo is one consumer of a group.
type ConsumerInfo struct {
	Name       Bytes  `json:"name"`
	SeenTime   int64  `json:"seen_time"`
	ActiveTime *int64 `json:"active_time"`
}

// Show finds key in database db of archive name and describes it: its
// type, TTL, the first o.Limit elements, a stream's delivery state; the
// whole value goes to o.Out. The archive is read to its end, so that what
// is shown has passed its checksum; a key it does not hold is ErrNotFound.
func (s *Service) Show(ctx context.Context, name string, key []byte, db int, o ShowOptions) (res ShowResult, err error) {
	defer func() { settle(&res.Success, &res.Error, err) }()
	if o.Limit <= 0 {
		o.Limit = 100
	}
	if db < 0 {
		return res, fmt.Errorf("%w: database %d", ErrInvalid, db)
	}
	a, release, err := s.resolve(ctx, name, o.Local)
	defer release()
	if err != nil {
		return res, err
	}
	res.Filename = a.Name
	var out *bufio.Writer
	if o.Out != nil {
		out = bufio.NewWriterSize(o.Out, 64<<10)
	}
	v := &shown{limit: o.Limit, out: out}
	found := false
	inKey := false
	err = s.walk(ctx, a, o.Identities, nil, func(k *walkedKey) (bool, error) {
		if !inKey {
			return true, nil
		}
		inKey, found = false, true
		res.KeyInfo = k.info()
		if k.raw != nil {
			res.Module, res.RDBVersion = k.raw.Module, k.raw.RDBVersion
		}
		if k.last.Stream != nil {
			res.Stream = streamInfo(k.last.Stream, o.Limit)
		}
		return true, nil
	}, func(c *codec.Chunk) error {
		if c.First {
			inKey = !found && c.DB == db && string(c.Key) == string(key)
		}
		if !inKey {
			return nil
		}
		return v.add(c)
	})
	if err != nil {
		return res, err
	}
	if !found {
		return res, fmt.Errorf("%w: %s holds no key %s in database %d", ErrNotFound, a.Name, glob.Quote(key), db)
	}
	if out != nil {
		if err := out.Flush(); err != nil {
			return res, fmt.Errorf("write the value: %w", err)
		}
	}
	res.Value, res.Truncated = v.value(res.Type), v.truncated
	return res, nil
}

// shown gathers the value that Show shows.
type shown struct {
	limit     int
	out       *bufio.Writer
	str       []byte
	elems     []any
	truncated bool
	line      []byte
}

func (v *shown) add(c *codec.Chunk) error {
	switch c.Type {
	case codec.TypeString, codec.TypeRaw:
		for _, p := range c.Items {
			if room := MaxShowBytes - len(v.str); room > 0 {
				v.str = append(v.str, p[:min(room, len(p))]...)
			}
			if len(v.str) >= MaxShowBytes && len(p) > 0 {
				v.truncated = true
			}
			if v.out != nil {
				if _, err := v.out.Write(p); err != nil {
					return fmt.Errorf("write the value: %w", err)
				}
			}
		}
		return nil
	}
	n := int(elementsOf(c))
	for i := 0; i < n; i++ {
		e := element(c, i)
		if len(v.elems) < v.limit {
			v.elems = append(v.elems, e)
		} else {
			v.truncated = true
		}
		if v.out != nil {
			b, err := json.Marshal(e)
			if err != nil {
				return err
			}
			v.line = append(append(v.line[:0], b...), '\n')
			if _, err := v.out.Write(v.line); err != nil {
				return fmt.Errorf("write the value: %w", err)
			}
		}
	}
	if v.out == nil && v.truncated {
		// Nothing more to gather; the archive is still read to its end.
		return nil
	}
	return nil
}

func (v *shown) value(typ string) any {
	if typ == "string" || typ == "raw" {
		if v.str == nil {
			return Bytes{}
		}
		return Bytes(v.str)
	}
	if v.elems == nil {
		return []any{}
	}
	return v.elems
}

// score is a zset score as the archive holds its text: a JSON number, or
// one of the strings "inf", "+inf", "-inf".
type score []byte

func (s score) String() string { return string(s) }

func (s score) MarshalJSON() ([]byte, error) {
	if _, err := strconv.ParseFloat(string(s), 64); err == nil && json.Valid(s) {
		return append([]byte(nil), s...), nil
	}
	return json.Marshal(string(s))
}

// element returns element i of chunk c as the JSON value Show gives it.
func element(c *codec.Chunk, i int) any {
	cp := func(b []byte) Bytes { return Bytes(append([]byte(nil), b...)) }
	switch c.Type {
	case codec.TypeHash:
		if c.FieldExpire != nil && c.FieldExpire[i] > 0 {
			return []any{cp(c.Items[2*i]), cp(c.Items[2*i+1]), c.FieldExpire[i]}
		}
		return []any{cp(c.Items[2*i]), cp(c.Items[2*i+1])}
	case codec.TypeZSet:
		return []any{cp(c.Items[2*i]), score(cp(c.Items[2*i+1]))}
	case codec.TypeStream:
		e := c.Entries[i]
		fields := make([]Bytes, len(e.Fields))
		for j, f := range e.Fields {
			fields[j] = cp(f)
		}
		return []any{cp(e.ID), fields}
	}
	return cp(c.Items[i])
}

func streamInfo(m *codec.StreamMeta, limit int) *StreamInfo {
	si := &StreamInfo{LastID: Bytes(m.LastID), Groups: []GroupInfo{}}
	if m.EntriesAdded >= 0 {
		n := m.EntriesAdded
		si.EntriesAdded = &n
	}
	if m.MaxDeletedID != nil {
		si.MaxDeletedID = Bytes(m.MaxDeletedID)
	}
	for _, g := range m.Groups {
		gi := GroupInfo{Name: Bytes(g.Name), LastDeliveredID: Bytes(g.LastDeliveredID), Consumers: []ConsumerInfo{},
			Pending: [][4]any{}, PendingCount: len(g.Pending)}
		if g.EntriesRead >= 0 {
			n := g.EntriesRead
			gi.EntriesRead = &n
		}
		for i, cn := range g.Consumers {
			if i >= limit {
				break
			}
			ci := ConsumerInfo{Name: Bytes(cn.Name), SeenTime: cn.SeenTime}
			if cn.ActiveTime >= 0 {
				t := cn.ActiveTime
				ci.ActiveTime = &t
			}
			gi.Consumers = append(gi.Consumers, ci)
		}
		for i, p := range g.Pending {
			if i >= limit {
				break
			}
			gi.Pending = append(gi.Pending, [4]any{Bytes(p.ID), Bytes(p.Consumer), p.DeliveryTime, p.DeliveryCount})
		}
		si.Groups = append(si.Groups, gi)
	}
	return si
}

// FormatTTL describes a key's expiry for a person ("none", "59.4s").
func FormatTTL(k KeyInfo) string {
	if k.TTL == nil {
		return "none"
	}
	d := time.Duration(k.PTTL) * time.Millisecond
	if k.ExpireAt > 0 {
		return fmt.Sprintf("%v (at %s)", d.Round(time.Millisecond), time.UnixMilli(k.ExpireAt).UTC().Format(time.RFC3339))
	}
	return d.Round(time.Millisecond).String()
}

var _ = errors.New
