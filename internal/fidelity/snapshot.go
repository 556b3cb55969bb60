package fidelity

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// State is a server's whole logical state, as Snapshot reads it.
type State struct {
	Caps    Caps
	TakenAt time.Time
	// DBs holds, per database that has keys, every key's value.
	DBs map[int]map[string]*Value
}

// Keys is the number of keys of every database.
func (s State) Keys() int {
	n := 0
	for _, db := range s.DBs {
		n += len(db)
	}
	return n
}

// Value is one key's value, read semantically: what a client can observe.
type Value struct {
	Type string // TYPE's answer
	PTTL int64  // milliseconds left; -1 for none
	// ExpireAt is the absolute expiry (PEXPIRETIME, Unix ms); -1 for none.
	ExpireAt int64

	Str  string   // string
	List []string // list, in order
	Set  []string // set, sorted
	// ZSet maps each member to its score (zset).
	ZSet map[string]float64
	// Hash maps each field to its value; FieldExpire maps the fields that
	// have an expiry time to it (Unix ms, HPEXPIRETIME; only on servers
	// with field TTLs).
	Hash        map[string]string
	FieldExpire map[string]int64
	Stream      *Stream
	Vector      *VectorSet
	// Dump is the DUMP payload of a type Snapshot does not know.
	Dump string
}

// Stream is a stream's entries and metadata (XINFO STREAM FULL).
type Stream struct {
	Length       int64
	LastID       string
	MaxDeletedID string
	EntriesAdded string
	FirstID      string // recorded-first-entry-id
	Entries      []Entry
	Groups       []Group // by name
}

// Entry is one stream entry.
type Entry struct {
	ID     string
	Fields []string // field, value, ... in order
}

// Group is a consumer group: its position, consumers (names only: their
// seen and active times cannot be restored) and pending entries.
type Group struct {
	Name            string
	LastDeliveredID string
	EntriesRead     string // "" when the server reports none
	Lag             string // "" when the server reports none
	Consumers       []string
	Pending         []Pending // by ID
}

// Pending is one entry of a group's pending entries list.
type Pending struct {
	ID            string
	Consumer      string
	DeliveryTime  int64 // Unix ms
	DeliveryCount int64
}

// VectorSet is a vector set read element by element.
type VectorSet struct {
	// Info is VINFO without the fields that number objects of one server
	// (vset-uid, hnsw-max-node-uid).
	Info     map[string]string
	Elements map[string]VectorElement
}

// VectorElement is one element of a vector set: its stored vector (VEMB
// RAW: quantization, bytes, norm, range), attributes (VGETATTR) and graph
// links (VLINKS, sorted per level).
type VectorElement struct {
	Raw   string
	Attr  string
	Links string
}

// Snapshot reads every key of every database of the server c points at.
// The server must not change meanwhile.
func Snapshot(ctx context.Context, c *redis.Client) (State, error) {
	caps, err := Probe(ctx, c)
	if err != nil {
		return State{}, err
	}
	st := State{Caps: caps, TakenAt: time.Now(), DBs: map[int]map[string]*Value{}}
	text, err := c.Info(ctx, "keyspace").Result()
	if err != nil {
		return State{}, fmt.Errorf("INFO keyspace: %w", err)
	}
	for line := range strings.SplitSeq(text, "\n") {
		name, _, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "db") {
			continue
		}
		db, err := strconv.Atoi(name[2:])
		if err != nil {
			continue
		}
		dc := dbClient(c, db)
		vals, err := readDB(ctx, dc, caps)
		dc.Close()
		if err != nil {
			return State{}, fmt.Errorf("database %d: %w", db, err)
		}
		if len(vals) > 0 {
			st.DBs[db] = vals
		}
	}
	return st, nil
}

func readDB(ctx context.Context, c *redis.Client, caps Caps) (map[string]*Value, error) {
	var keys []string
	seen := map[string]bool{}
	var cursor uint64
	for {
		ks, next, err := c.Scan(ctx, cursor, "*", 1000).Result()
		if err != nil {
			return nil, fmt.Errorf("SCAN: %w", err)
		}
		for _, k := range ks {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	out := make(map[string]*Value, len(keys))
	for start := 0; start < len(keys); start += 500 {
		part := keys[start:min(start+500, len(keys))]
		pipe := c.Pipeline()
		types := make([]*redis.StatusCmd, len(part))
		ttls := make([]*redis.IntCmd, len(part))
		ats := make([]*redis.IntCmd, len(part))
		for i, k := range part {
			types[i] = pipe.Type(ctx, k)
			ttls[i] = redis.NewIntCmd(ctx, "PTTL", k)
			_ = pipe.Process(ctx, ttls[i])
			ats[i] = redis.NewIntCmd(ctx, "PEXPIRETIME", k)
			_ = pipe.Process(ctx, ats[i])
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("TYPE/PTTL: %w", err)
		}
		for i, k := range part {
			v := &Value{Type: types[i].Val(), PTTL: ttls[i].Val(), ExpireAt: ats[i].Val()}
			if v.Type == "none" {
				return nil, fmt.Errorf("key %s vanished while it was read", quote(k))
			}
			if err := readValue(ctx, c, caps, k, v); err != nil {
				return nil, fmt.Errorf("key %s (%s): %w", quote(k), v.Type, err)
			}
			out[k] = v
		}
	}
	return out, nil
}

func readValue(ctx context.Context, c *redis.Client, caps Caps, k string, v *Value) error {
	var err error
	switch v.Type {
	case "string":
		v.Str, err = c.Get(ctx, k).Result()
	case "list":
		v.List, err = c.LRange(ctx, k, 0, -1).Result()
		if v.List == nil {
			v.List = []string{}
		}
	case "set":
		v.Set, err = c.SMembers(ctx, k).Result()
		slices.Sort(v.Set)
	case "zset":
		var raw []string
		raw, err = c.Do(ctx, "ZRANGE", k, 0, -1, "WITHSCORES").StringSlice()
		if err == nil {
			v.ZSet = make(map[string]float64, len(raw)/2)
			for i := 0; i+1 < len(raw); i += 2 {
				f, perr := strconv.ParseFloat(raw[i+1], 64)
				if perr != nil {
					return fmt.Errorf("score %q: %w", raw[i+1], perr)
				}
				v.ZSet[raw[i]] = f
			}
		}
	case "hash":
		v.Hash, err = c.HGetAll(ctx, k).Result()
		if err == nil && caps.FieldTTLs {
			v.FieldExpire, err = fieldExpire(ctx, c, k, v.Hash)
		}
	case "stream":
		v.Stream, err = readStream(ctx, c, k)
	case "vectorset":
		v.Vector, err = readVectorSet(ctx, c, k)
	default:
		v.Dump, err = c.Dump(ctx, k).Result()
	}
	return err
}

// fieldExpire reads HPEXPIRETIME of every field of a hash.
func fieldExpire(ctx context.Context, c *redis.Client, k string, h map[string]string) (map[string]int64, error) {
	fields := make([]string, 0, len(h))
	for f := range h {
		fields = append(fields, f)
	}
	slices.Sort(fields)
	out := map[string]int64{}
	for start := 0; start < len(fields); start += 1000 {
		part := fields[start:min(start+1000, len(fields))]
		args := []any{"HPEXPIRETIME", k, "FIELDS", len(part)}
		for _, f := range part {
			args = append(args, f)
		}
		ts, err := c.Do(ctx, args...).Int64Slice()
		if err != nil {
			return nil, fmt.Errorf("HPEXPIRETIME: %w", err)
		}
		if len(ts) != len(part) {
			return nil, fmt.Errorf("HPEXPIRETIME: %d answers for %d fields", len(ts), len(part))
		}
		for i, t := range ts {
			switch {
			case t > 0:
				out[part[i]] = t
			case t == -2:
				return nil, fmt.Errorf("field %s vanished while it was read", quote(part[i]))
			}
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// pairsOf turns a flat RESP2 [name, value, ...] array into a map.
func pairsOf(v any) map[string]any {
	arr, _ := v.([]any)
	m := make(map[string]any, len(arr)/2)
	for i := 0; i+1 < len(arr); i += 2 {
		if k, ok := arr[i].(string); ok {
			m[k] = arr[i+1]
		}
	}
	return m
}

// text renders a reply field: a string as is, an integer in decimal, a
// null as "".
func text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	}
	return fmt.Sprint(v)
}

func integer(v any) int64 {
	switch v := v.(type) {
	case int64:
		return v
	case string:
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	}
	return 0
}

func readStream(ctx context.Context, c *redis.Client, k string) (*Stream, error) {
	full, err := c.Do(ctx, "XINFO", "STREAM", k, "FULL", "COUNT", 0).Result()
	if err != nil {
		return nil, fmt.Errorf("XINFO STREAM FULL: %w", err)
	}
	info := pairsOf(full)
	s := &Stream{
		Length:       integer(info["length"]),
		LastID:       text(info["last-generated-id"]),
		MaxDeletedID: text(info["max-deleted-entry-id"]),
		EntriesAdded: text(info["entries-added"]),
		FirstID:      text(info["recorded-first-entry-id"]),
	}
	entries, _ := info["entries"].([]any)
	for _, e := range entries {
		pair, _ := e.([]any)
		if len(pair) != 2 {
			return nil, fmt.Errorf("XINFO STREAM FULL: an entry of shape %v", e)
		}
		en := Entry{ID: text(pair[0]), Fields: []string{}}
		fv, _ := pair[1].([]any)
		for _, x := range fv {
			en.Fields = append(en.Fields, text(x))
		}
		s.Entries = append(s.Entries, en)
	}
	groups, _ := info["groups"].([]any)
	for _, gv := range groups {
		gi := pairsOf(gv)
		g := Group{
			Name:            text(gi["name"]),
			LastDeliveredID: text(gi["last-delivered-id"]),
			EntriesRead:     text(gi["entries-read"]),
			Lag:             text(gi["lag"]),
			Consumers:       []string{},
		}
		pel, _ := gi["pending"].([]any)
		for _, pv := range pel {
			p, _ := pv.([]any)
			if len(p) != 4 {
				return nil, fmt.Errorf("XINFO STREAM FULL: a pending entry of shape %v", pv)
			}
			g.Pending = append(g.Pending, Pending{ID: text(p[0]), Consumer: text(p[1]), DeliveryTime: integer(p[2]), DeliveryCount: integer(p[3])})
		}
		slices.SortFunc(g.Pending, func(a, b Pending) int { return compareIDs(a.ID, b.ID) })
		cons, _ := gi["consumers"].([]any)
		for _, cv := range cons {
			g.Consumers = append(g.Consumers, text(pairsOf(cv)["name"]))
		}
		slices.Sort(g.Consumers)
		s.Groups = append(s.Groups, g)
	}
	slices.SortFunc(s.Groups, func(a, b Group) int { return strings.Compare(a.Name, b.Name) })
	return s, nil
}

// compareIDs orders stream IDs ("ms-seq") numerically.
func compareIDs(a, b string) int {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	an, _ := strconv.ParseUint(am, 10, 64)
	bn, _ := strconv.ParseUint(bm, 10, 64)
	if an != bn {
		if an < bn {
			return -1
		}
		return 1
	}
	an, _ = strconv.ParseUint(as, 10, 64)
	bn, _ = strconv.ParseUint(bs, 10, 64)
	switch {
	case an < bn:
		return -1
	case an > bn:
		return 1
	}
	return 0
}

func readVectorSet(ctx context.Context, c *redis.Client, k string) (*VectorSet, error) {
	info, err := c.Do(ctx, "VINFO", k).Result()
	if err != nil {
		return nil, fmt.Errorf("VINFO: %w", err)
	}
	vs := &VectorSet{Info: map[string]string{}, Elements: map[string]VectorElement{}}
	for name, val := range pairsOf(info) {
		if name == "vset-uid" || name == "hnsw-max-node-uid" {
			continue
		}
		vs.Info[name] = text(val)
	}
	card, err := c.Do(ctx, "VCARD", k).Int64()
	if err != nil {
		return nil, fmt.Errorf("VCARD: %w", err)
	}
	elems, err := c.Do(ctx, "VRANDMEMBER", k, card+1).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("VRANDMEMBER: %w", err)
	}
	if int64(len(elems)) != card {
		return nil, fmt.Errorf("VRANDMEMBER gave %d elements of %d", len(elems), card)
	}
	slices.Sort(elems)
	for start := 0; start < len(elems); start += 500 {
		part := elems[start:min(start+500, len(elems))]
		pipe := c.Pipeline()
		type cmds struct{ raw, attr, links *redis.Cmd }
		cs := make([]cmds, len(part))
		for i, e := range part {
			cs[i] = cmds{pipe.Do(ctx, "VEMB", k, e, "RAW"), pipe.Do(ctx, "VGETATTR", k, e), pipe.Do(ctx, "VLINKS", k, e)}
		}
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return nil, fmt.Errorf("VEMB/VGETATTR/VLINKS: %w", err)
		}
		for i, e := range part {
			el := VectorElement{Raw: fmt.Sprintf("%q", cs[i].raw.Val()), Attr: text(cs[i].attr.Val())}
			levels, _ := cs[i].links.Val().([]any)
			var ls []string
			for _, lv := range levels {
				names, _ := lv.([]any)
				var ns []string
				for _, n := range names {
					ns = append(ns, strconv.Quote(text(n)))
				}
				slices.Sort(ns)
				ls = append(ls, "["+strings.Join(ns, " ")+"]")
			}
			el.Links = strings.Join(ls, " ")
			vs.Elements[e] = el
		}
	}
	return vs, nil
}
