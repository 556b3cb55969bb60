package agent

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/redback-dev/redback/agent/engine"
	"github.com/redback-dev/redback/codec"
	"github.com/redback-dev/redback/internal/glob"
)

// typeNames are the archive's type names (FORMAT.md "Key objects").
var typeNames = map[codec.Type]string{
	codec.TypeString: "string", codec.TypeHash: "hash", codec.TypeList: "list", codec.TypeSet: "set",
	codec.TypeZSet: "zset", codec.TypeStream: "stream", codec.TypeRaw: "raw",
}

// typeName names t as an archive does.
func typeName(t codec.Type) string { return typeNames[t] }

// Selection picks keys of an archive (or of a server): by pattern (Redis
// glob syntax, with \xHH for any byte: see internal/glob), by type and by
// database. The zero Selection picks every key.
type Selection struct {
	// Match: a key is picked when it matches one of these (or there are
	// none); Exclude: and none of these.
	Match, Exclude []string
	// Types: the key's type is one of these (string, hash, list, set,
	// zset, stream, raw, or the server's type of a raw key such as
	// vectorset); empty: any.
	Types []string
	// DBs: the key's database (the archive's number) is one of these;
	// empty: any.
	DBs []int
}

// keySelection is a Selection compiled.
type keySelection struct {
	set   glob.Set
	types []string
	dbs   []int
}

// compile checks the selection and returns it compiled, or nil when it
// picks every key.
func (sel Selection) compile() (*keySelection, error) {
	if len(sel.Match) == 0 && len(sel.Exclude) == 0 && len(sel.Types) == 0 && len(sel.DBs) == 0 {
		return nil, nil
	}
	for _, t := range sel.Types {
		if t == "" || strings.ContainsAny(t, "\x00\n") || len(t) > 256 {
			return nil, fmt.Errorf("%w: type %q: want string, hash, list, set, zset, stream, raw, or a module type name", ErrInvalid, t)
		}
	}
	for _, db := range sel.DBs {
		if db < 0 {
			return nil, fmt.Errorf("%w: database %d: want a number from 0", ErrInvalid, db)
		}
	}
	for _, p := range append(append([]string(nil), sel.Match...), sel.Exclude...) {
		if len(p) > 64<<10 {
			return nil, fmt.Errorf("%w: a pattern of %d bytes (at most 64 KiB)", ErrInvalid, len(p))
		}
	}
	return &keySelection{set: glob.ParseSet(sel.Match, sel.Exclude), types: sel.Types, dbs: sel.DBs}, nil
}

// picks reports whether k selects the key of chunk c (a first chunk: the
// only one that carries a raw key's type for sure).
func (k *keySelection) picks(db int, key []byte, t codec.Type, raw *codec.RawInfo) bool {
	if k == nil {
		return true
	}
	if len(k.dbs) > 0 && !slices.Contains(k.dbs, db) {
		return false
	}
	if len(k.types) > 0 {
		name := typeName(t)
		ok := slices.Contains(k.types, name)
		if !ok && raw != nil {
			ok = slices.Contains(k.types, raw.RedisType)
		}
		if !ok {
			return false
		}
	}
	return k.set.Selects(key)
}

// selected passes on the chunks of the keys a selection picks, and counts
// the keys it leaves out.
type selected struct {
	src      engine.ChunkSource
	sel      *keySelection
	skipping bool
	left     int64
	// leftSoFar is left, for progress reports from other goroutines.
	leftSoFar atomic.Int64
}

func (f *selected) Next() (*codec.Chunk, error) {
	for {
		c, err := f.src.Next()
		if err != nil {
			return c, err
		}
		if c.First {
			f.skipping = !f.sel.picks(c.DB, c.Key, c.Type, c.Raw)
			if f.skipping {
				f.left++
				f.leftSoFar.Store(f.left)
			}
		}
		if !f.skipping {
			return c, nil
		}
		f.src.Release(c)
	}
}

func (f *selected) Release(c *codec.Chunk) { f.src.Release(c) }

// selectFunc returns the engine's predicate for a backup's selection (nil
// for every key).
func selectFuncOf(set *glob.Set) func([]byte) bool {
	if set == nil {
		return nil
	}
	return set.Selects
}
