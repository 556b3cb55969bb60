package fidelity

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// DiffOptions are the tolerances of Diff.
type DiffOptions struct {
	// TTLSlack is how far key TTLs may differ: with relative TTLs the time
	// between the two snapshots, with AbsoluteTTL the error of the expiry
	// times recorded.
	TTLSlack time.Duration
	// AbsoluteTTL compares the keys' expiry times (PEXPIRETIME) instead of
	// their remaining times to live (PTTL): for a restore with absolute
	// TTLs, after which the times to live are shorter by the time elapsed.
	AbsoluteTTL bool
	// FieldTTLSlack is how far hash field expiry times may differ; 0 means
	// exactly (a restore with absolute TTLs).
	FieldTTLSlack time.Duration
	// Missing lists keys of a that b must not hold: those the target cannot
	// hold (a hash with field TTLs on a server without them, a module type
	// it cannot load). Each must be in a and absent from b; the value says
	// why, for the messages.
	Missing map[KeyRef]string
	// DBMap maps a database of a to the database of b that holds its keys
	// (a restore with --db); databases not in it keep their number.
	DBMap map[int]int
	// MaxDiffs caps the differences reported (default 100).
	MaxDiffs int
}

// Diff lists the differences between a (the source) and b (the restored
// copy), or nil when b holds exactly a's keys with a's values. Scores are
// compared as float64 (so -0 equals 0: Redis 7.0 turns -0 into 0 in
// listpacks; compare digests to tell them apart on one version).
func Diff(a, b State, opt DiffOptions) []string {
	if opt.MaxDiffs <= 0 {
		opt.MaxDiffs = 100
	}
	d := &differ{max: opt.MaxDiffs}
	mapped := func(db int) int {
		if to, ok := opt.DBMap[db]; ok {
			return to
		}
		return db
	}
	// Every key of a, against the key of b it should be.
	covered := map[int]bool{}
	for _, db := range slices.Sorted(maps.Keys(a.DBs)) {
		to := mapped(db)
		covered[to] = true
		bdb := b.DBs[to]
		for _, k := range slices.Sorted(maps.Keys(a.DBs[db])) {
			ref := KeyRef{db, k}
			where := ref.String()
			if to != db {
				where += fmt.Sprintf(" (in db %d)", to)
			}
			bv, ok := bdb[k]
			if why, missing := opt.Missing[ref]; missing {
				if ok {
					d.add("%s: restored, but it should not have been (%s)", where, why)
				}
				continue
			}
			if !ok {
				d.add("%s: missing (a %s)", where, a.DBs[db][k].Type)
				continue
			}
			d.value(where, a.DBs[db][k], bv, opt)
		}
	}
	for ref, why := range opt.Missing {
		if _, ok := a.DBs[ref.DB][ref.Key]; !ok {
			d.add("%s: listed as missing (%s), but the source does not hold it", ref, why)
		}
	}
	// Keys b has and a does not.
	for _, db := range slices.Sorted(maps.Keys(b.DBs)) {
		from := -1
		for adb := range a.DBs {
			if mapped(adb) == db {
				from = adb
			}
		}
		for _, k := range slices.Sorted(maps.Keys(b.DBs[db])) {
			if from >= 0 {
				if _, ok := a.DBs[from][k]; ok {
					continue
				}
			}
			d.add("db %d key %s: extra key (a %s)", db, quote(k), b.DBs[db][k].Type)
		}
	}
	return d.out
}

type differ struct {
	out []string
	max int
}

func (d *differ) add(format string, args ...any) {
	if len(d.out) == d.max {
		d.out = append(d.out, "... (more differences left out)")
	}
	if len(d.out) > d.max {
		return
	}
	d.out = append(d.out, fmt.Sprintf(format, args...))
}

func absMS(v int64) time.Duration {
	if v < 0 {
		v = -v
	}
	return time.Duration(v) * time.Millisecond
}

func (d *differ) value(where string, a, b *Value, opt DiffOptions) {
	if a.Type != b.Type {
		d.add("%s: type %s, restored as %s", where, a.Type, b.Type)
		return
	}
	switch {
	case opt.AbsoluteTTL:
		if (a.ExpireAt < 0) != (b.ExpireAt < 0) || absMS(a.ExpireAt-b.ExpireAt) > opt.TTLSlack {
			d.add("%s: expires at %s, restored %s", where, at(a.ExpireAt), at(b.ExpireAt))
		}
	case (a.PTTL < 0) != (b.PTTL < 0) || absMS(a.PTTL-b.PTTL) > opt.TTLSlack:
		d.add("%s: TTL %s, restored %s", where, ttl(a.PTTL), ttl(b.PTTL))
	}
	switch a.Type {
	case "string":
		if a.Str != b.Str {
			d.add("%s: string %s", where, bytesDiff(a.Str, b.Str))
		}
	case "list":
		d.sequence(where+": list", a.List, b.List)
	case "set":
		d.members(where+": set", a.Set, b.Set)
	case "zset":
		d.zset(where, a.ZSet, b.ZSet)
	case "hash":
		d.hash(where, a, b, opt)
	case "stream":
		d.stream(where, a.Stream, b.Stream)
	case "vectorset":
		d.vectors(where, a.Vector, b.Vector)
	default:
		if a.Dump != b.Dump {
			d.add("%s: DUMP payload %s", where, bytesDiff(a.Dump, b.Dump))
		}
	}
}

func at(ms int64) string {
	if ms < 0 {
		return "never"
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}

func ttl(ms int64) string {
	if ms < 0 {
		return "none"
	}
	return (time.Duration(ms) * time.Millisecond).String()
}

// bytesDiff describes how b differs from a.
func bytesDiff(a, b string) string {
	if len(a) != len(b) {
		return fmt.Sprintf("of %d bytes restored with %d (%s vs %s)", len(a), len(b), quote(a), quote(b))
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	return fmt.Sprintf("of %d bytes differs from byte %d (%s vs %s)", len(a), i, quote(a[i:]), quote(b[i:]))
}

func (d *differ) sequence(where string, a, b []string) {
	if len(a) != len(b) {
		d.add("%s of %d items restored with %d", where, len(a), len(b))
	}
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			d.add("%s: item %d is %s, restored %s", where, i, quote(a[i]), quote(b[i]))
			return
		}
	}
}

// members compares sorted lists of members.
func (d *differ) members(where string, a, b []string) {
	am := map[string]bool{}
	for _, m := range a {
		am[m] = true
	}
	bm := map[string]bool{}
	for _, m := range b {
		bm[m] = true
	}
	var lost, extra []string
	for _, m := range a {
		if !bm[m] {
			lost = append(lost, quote(m))
		}
	}
	for _, m := range b {
		if !am[m] {
			extra = append(extra, quote(m))
		}
	}
	if len(lost) > 0 || len(extra) > 0 {
		d.add("%s of %d members restored with %d: lost %s, extra %s", where, len(a), len(b), few(lost), few(extra))
	}
}

func few(s []string) string {
	if len(s) > 5 {
		return fmt.Sprintf("[%s ... (%d)]", strings.Join(s[:5], " "), len(s))
	}
	return "[" + strings.Join(s, " ") + "]"
}

func (d *differ) zset(where string, a, b map[string]float64) {
	var bad []string
	for _, m := range slices.Sorted(maps.Keys(a)) {
		bs, ok := b[m]
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("%s lost", quote(m)))
		case bs != a[m]: // -0 == 0
			bad = append(bad, fmt.Sprintf("%s score %v restored %v", quote(m), a[m], bs))
		}
	}
	for _, m := range slices.Sorted(maps.Keys(b)) {
		if _, ok := a[m]; !ok {
			bad = append(bad, fmt.Sprintf("%s extra", quote(m)))
		}
	}
	if len(bad) > 0 {
		d.add("%s: zset of %d members restored with %d: %s", where, len(a), len(b), few(bad))
	}
}

func (d *differ) hash(where string, a, b *Value, opt DiffOptions) {
	var bad []string
	for _, f := range slices.Sorted(maps.Keys(a.Hash)) {
		bv, ok := b.Hash[f]
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("field %s lost", quote(f)))
		case bv != a.Hash[f]:
			bad = append(bad, fmt.Sprintf("field %s: %s", quote(f), bytesDiff(a.Hash[f], bv)))
		}
	}
	for _, f := range slices.Sorted(maps.Keys(b.Hash)) {
		if _, ok := a.Hash[f]; !ok {
			bad = append(bad, fmt.Sprintf("field %s extra", quote(f)))
		}
	}
	if len(bad) > 0 {
		d.add("%s: hash of %d fields restored with %d: %s", where, len(a.Hash), len(b.Hash), few(bad))
	}
	bad = bad[:0]
	for _, f := range slices.Sorted(maps.Keys(a.FieldExpire)) {
		if _, ok := b.Hash[f]; !ok {
			continue // reported above
		}
		at, bt := a.FieldExpire[f], b.FieldExpire[f]
		switch {
		case bt == 0:
			bad = append(bad, fmt.Sprintf("%s lost its expiry %d", quote(f), at))
		case absMS(at-bt) > opt.FieldTTLSlack:
			bad = append(bad, fmt.Sprintf("%s expires at %d, restored %d (%+d ms)", quote(f), at, bt, bt-at))
		}
	}
	for _, f := range slices.Sorted(maps.Keys(b.FieldExpire)) {
		if _, ok := a.FieldExpire[f]; !ok {
			bad = append(bad, fmt.Sprintf("%s got an expiry %d", quote(f), b.FieldExpire[f]))
		}
	}
	if len(bad) > 0 {
		d.add("%s: field TTLs: %s", where, few(bad))
	}
}

func (d *differ) stream(where string, a, b *Stream) {
	if a == nil || b == nil {
		if a != b {
			d.add("%s: stream read failed on one side", where)
		}
		return
	}
	meta := func(s *Stream) string {
		return fmt.Sprintf("length=%d last-id=%s max-deleted-id=%s entries-added=%s first-id=%s",
			s.Length, s.LastID, s.MaxDeletedID, s.EntriesAdded, s.FirstID)
	}
	if ma, mb := meta(a), meta(b); ma != mb {
		d.add("%s: stream %s, restored %s", where, ma, mb)
	}
	if len(a.Entries) != len(b.Entries) {
		d.add("%s: stream of %d entries restored with %d", where, len(a.Entries), len(b.Entries))
	}
	for i := range min(len(a.Entries), len(b.Entries)) {
		ea, eb := a.Entries[i], b.Entries[i]
		if ea.ID != eb.ID || !slices.Equal(ea.Fields, eb.Fields) {
			d.add("%s: entry %d is %s %q, restored %s %q", where, i, ea.ID, ea.Fields, eb.ID, eb.Fields)
			break
		}
	}
	bg := map[string]Group{}
	for _, g := range b.Groups {
		bg[g.Name] = g
	}
	for _, ga := range a.Groups {
		gb, ok := bg[ga.Name]
		if !ok {
			d.add("%s: group %s lost", where, quote(ga.Name))
			continue
		}
		delete(bg, ga.Name)
		gw := fmt.Sprintf("%s: group %s", where, quote(ga.Name))
		pos := func(g Group) string {
			return fmt.Sprintf("last-delivered-id=%s entries-read=%q lag=%q", g.LastDeliveredID, g.EntriesRead, g.Lag)
		}
		if pa, pb := pos(ga), pos(gb); pa != pb {
			d.add("%s: %s, restored %s", gw, pa, pb)
		}
		if !slices.Equal(ga.Consumers, gb.Consumers) {
			d.add("%s: consumers %q, restored %q", gw, ga.Consumers, gb.Consumers)
		}
		if len(ga.Pending) != len(gb.Pending) {
			d.add("%s: %d pending entries, restored %d", gw, len(ga.Pending), len(gb.Pending))
		}
		for i := range min(len(ga.Pending), len(gb.Pending)) {
			if ga.Pending[i] != gb.Pending[i] {
				d.add("%s: pending entry %+v, restored %+v", gw, ga.Pending[i], gb.Pending[i])
				break
			}
		}
	}
	for name := range bg {
		d.add("%s: extra group %s", where, quote(name))
	}
}

func (d *differ) vectors(where string, a, b *VectorSet) {
	if a == nil || b == nil {
		if a != b {
			d.add("%s: vector set read failed on one side", where)
		}
		return
	}
	if !maps.Equal(a.Info, b.Info) {
		d.add("%s: VINFO %v, restored %v", where, a.Info, b.Info)
	}
	var bad []string
	for _, e := range slices.Sorted(maps.Keys(a.Elements)) {
		eb, ok := b.Elements[e]
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("%s lost", quote(e)))
		case eb != a.Elements[e]:
			bad = append(bad, fmt.Sprintf("%s %+v restored %+v", quote(e), a.Elements[e], eb))
		}
	}
	for _, e := range slices.Sorted(maps.Keys(b.Elements)) {
		if _, ok := a.Elements[e]; !ok {
			bad = append(bad, fmt.Sprintf("%s extra", quote(e)))
		}
	}
	if len(bad) > 0 {
		d.add("%s: vector set of %d elements restored with %d: %s", where, len(a.Elements), len(b.Elements), few(bad))
	}
}
