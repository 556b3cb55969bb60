// Package retention decides which backup archives to keep. It is pure: it
// reads no storage and deletes nothing; callers act on its decisions.
//
// The rules follow restic's "forget": an archive is kept when any rule keeps
// it. Archives are ordered by creation time (never by name), only complete
// archives count towards a rule, and the newest complete archive is always
// kept, whatever the policy says.
package retention

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/sinks"
)

// Policy says what to keep. The zero Policy keeps everything.
type Policy struct {
	// Last keeps the newest Last complete archives.
	Last int
	// Daily, Weekly, Monthly and Yearly keep the newest archive of each of
	// the newest N calendar days, ISO weeks, months and years that hold a
	// complete archive: a period without one does not use up a slot.
	Daily, Weekly, Monthly, Yearly int
	// Within keeps every complete archive created less than Within before now.
	Within time.Duration
	// Location is the time zone of days, weeks, months and years
	// (nil: UTC).
	Location *time.Location
	// SuspectDrop is the fall, as a fraction of the previous good
	// archive's key count or size, past which an archive is suspect (0
	// takes DefaultSuspectDrop; 1 or more turns the guard off). See
	// Suspects.
	SuspectDrop float64
}

// DefaultSuspectDrop: an archive with less than half the keys or bytes of
// the previous good one is suspect.
const DefaultSuspectDrop = 0.5

// FromConfig returns the policy of agent.yaml's retention section; periods
// are counted in loc.
func FromConfig(r config.Retention, loc *time.Location) Policy {
	return Policy{
		Last: r.KeepLast, Daily: r.KeepDaily, Weekly: r.KeepWeekly, Monthly: r.KeepMonthly,
		Yearly: r.KeepYearly, Within: r.KeepWithin, Location: loc, SuspectDrop: r.SuspectDrop,
	}
}

// IsZero reports whether the policy has no rule (it then keeps everything).
func (p Policy) IsZero() bool {
	return p.Last <= 0 && p.Daily <= 0 && p.Weekly <= 0 && p.Monthly <= 0 && p.Yearly <= 0 && p.Within <= 0
}

// Validate refuses negative counts and durations.
func (p Policy) Validate() error {
	for _, f := range []struct {
		name string
		n    int
	}{{"keep_last", p.Last}, {"keep_daily", p.Daily}, {"keep_weekly", p.Weekly}, {"keep_monthly", p.Monthly}, {"keep_yearly", p.Yearly}} {
		if f.n < 0 {
			return fmt.Errorf("retention.%s: %d is negative", f.name, f.n)
		}
	}
	if p.Within < 0 {
		return fmt.Errorf("retention.keep_within: %v is negative", p.Within)
	}
	if p.SuspectDrop < 0 || p.SuspectDrop > 1 {
		return fmt.Errorf("retention.suspect_drop: %v is not between 0 and 1", p.SuspectDrop)
	}
	return nil
}

// Archive is what the policy needs to know of an archive.
type Archive struct {
	Name    string
	Created time.Time
	// Complete is true for an archive whose completion was recorded (it has
	// a manifest). Other archives (copied in by hand, or whose manifest was
	// never written) do not count towards any rule and are never deleted.
	Complete bool
	// Keys and Size are the archive's key count and size in bytes (Keys
	// -1 when unknown).
	Keys int64
	Size int64
	// Pinned archives (`redback pin`) are always kept and count towards
	// no rule: they push no other archive out, and take no slot.
	Pinned bool
}

// FromInfos converts a sink listing.
func FromInfos(infos []sinks.Info) []Archive {
	out := make([]Archive, 0, len(infos))
	for _, in := range infos {
		a := Archive{Name: in.Name, Created: in.Created, Complete: in.Manifest != nil && !in.Manifest.Adopted, Keys: -1, Size: in.Size}
		if in.Manifest != nil {
			a.Keys = in.Manifest.KeysCount
			a.Pinned = in.Manifest.Pinned
		}
		out = append(out, a)
	}
	return out
}

// Suspects finds the archives that look like backups of an emptied or
// shrunken server (a FLUSHALL, a bad deploy, REDIS_URL pointing at an
// empty server): complete archives whose key count is 0 while the previous
// good one's was not, or whose key count or size fell by more than drop (a
// fraction; 0 takes DefaultSuspectDrop) against the previous good archive.
// "Good" is a complete archive that is not suspect itself, so a run of
// empty backups stays suspect however long it lasts. It returns, for each
// suspect archive, why.
func Suspects(archives []Archive, drop float64) map[string]string {
	if drop == 0 {
		drop = DefaultSuspectDrop
	}
	out := map[string]string{}
	if drop >= 1 {
		return out
	}
	sorted := byCreation(archives)
	var good *Archive
	for i := range sorted {
		a := &sorted[i]
		if !a.Complete {
			continue
		}
		if good != nil {
			if why := suspicion(*a, *good, drop); why != "" {
				out[a.Name] = why
				continue
			}
		}
		good = a
	}
	return out
}

func suspicion(a, good Archive, drop float64) string {
	switch {
	case a.Keys == 0 && good.Keys > 0:
		return fmt.Sprintf("suspect: 0 keys, after %d in %s", good.Keys, good.Name)
	case a.Keys >= 0 && good.Keys > 0 && float64(a.Keys) < (1-drop)*float64(good.Keys):
		return fmt.Sprintf("suspect: %d keys, after %d in %s", a.Keys, good.Keys, good.Name)
	case good.Size > 0 && layers(a.Name) == layers(good.Name) && float64(a.Size) < (1-drop)*float64(good.Size):
		return fmt.Sprintf("suspect: %d bytes, after %d in %s", a.Size, good.Size, good.Name)
	}
	return ""
}

func byCreation(archives []Archive) []Archive {
	sorted := append([]Archive(nil), archives...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if !a.Created.Equal(b.Created) {
			return a.Created.Before(b.Created)
		}
		return a.Name < b.Name
	})
	return sorted
}

// Decision is the verdict on one archive.
type Decision struct {
	Name    string
	Created time.Time
	Keep    bool
	// Reasons says why an archive is kept ("last 3/7", "daily 2026-03-01",
	// "newest complete archive", ...) or, for one to delete, "no rule keeps it".
	Reasons []string
}

// Plan decides, for every archive, whether the policy keeps it. The result
// is ordered oldest first (by creation time, then name). now is used by
// Within only. Plan does not modify archives.
//
// Suspect archives (see Suspects) are kept, do not count towards any rule
// and so push no older archive out: a week of backups of an emptied server
// leaves every good archive in place. Pinned archives are kept whatever
// the policy, and count towards no rule either (keep_last 1 keeps a
// pinned archive and the newest unpinned one).
func Plan(archives []Archive, p Policy, now time.Time) []Decision {
	sorted := byCreation(archives)
	suspects := Suspects(sorted, p.SuspectDrop)
	out := make([]Decision, len(sorted))
	for i, a := range sorted {
		out[i] = Decision{Name: a.Name, Created: a.Created}
	}
	keep := func(i int, why string) {
		out[i].Keep = true
		out[i].Reasons = append(out[i].Reasons, why)
	}

	// Newest first, complete, unpinned and not suspect only.
	var idx []int
	for i := len(sorted) - 1; i >= 0; i-- {
		if sorted[i].Complete && !sorted[i].Pinned && suspects[sorted[i].Name] == "" {
			idx = append(idx, i)
		}
	}
	if p.IsZero() {
		for i, a := range sorted {
			if a.Pinned {
				keep(i, "pinned")
			}
			if why := suspects[a.Name]; why != "" {
				keep(i, why)
			}
			keep(i, "no retention rule")
		}
		return out
	}
	loc := p.Location
	if loc == nil {
		loc = time.UTC
	}
	if len(idx) > 0 {
		keep(idx[0], "newest complete archive")
	}
	for n, i := range idx {
		if n < p.Last {
			keep(i, fmt.Sprintf("last %d/%d", n+1, p.Last))
		}
	}
	if p.Within > 0 {
		for _, i := range idx {
			if now.Sub(sorted[i].Created) < p.Within {
				keep(i, fmt.Sprintf("within %v", p.Within))
			}
		}
	}
	buckets := []struct {
		name  string
		n     int
		label func(t time.Time) string
	}{
		{"daily", p.Daily, func(t time.Time) string { return t.Format("2006-01-02") }},
		{"weekly", p.Weekly, func(t time.Time) string {
			y, w := t.ISOWeek()
			return fmt.Sprintf("%04d-W%02d", y, w)
		}},
		{"monthly", p.Monthly, func(t time.Time) string { return t.Format("2006-01") }},
		{"yearly", p.Yearly, func(t time.Time) string { return t.Format("2006") }},
	}
	for _, b := range buckets {
		if b.n <= 0 {
			continue
		}
		seen := map[string]bool{}
		for _, i := range idx {
			if len(seen) >= b.n {
				break
			}
			l := b.label(sorted[i].Created.In(loc))
			if seen[l] {
				continue
			}
			seen[l] = true
			keep(i, b.name+" "+l)
		}
	}
	for i, a := range sorted {
		if a.Pinned {
			keep(i, "pinned: never pruned, not counted")
		}
		if why := suspects[a.Name]; why != "" {
			keep(i, why+" (kept, not counted)")
		} else if !a.Complete && !a.Pinned {
			keep(i, "incomplete: not counted, never pruned")
		} else if !out[i].Keep {
			out[i].Reasons = []string{"no rule keeps it"}
		}
	}
	return out
}

// Split returns the names to keep and to delete, oldest first.
func Split(ds []Decision) (keep, del []string) {
	keep, del = []string{}, []string{}
	for _, d := range ds {
		if d.Keep {
			keep = append(keep, d.Name)
		} else {
			del = append(del, d.Name)
		}
	}
	return keep, del
}

// layers is the part of an archive name after ".json" (".gz", ".gz.age",
// ...): sizes compare only between archives of the same layers.
func layers(name string) string {
	if i := strings.LastIndex(name, ".json"); i >= 0 {
		return name[i:]
	}
	return ""
}
