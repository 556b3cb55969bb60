package retention

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

func name(t time.Time) string {
	return "redis_backup_" + t.UTC().Format("20060102_150405") + ".json.gz"
}

func kept(ds []Decision) []string {
	k, _ := Split(ds)
	return k
}

func TestKeepLastLikeTheSeed(t *testing.T) {
	base := time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)
	var as []Archive
	for i := range 10 {
		c := base.Add(time.Duration(i) * 24 * time.Hour)
		as = append(as, Archive{Name: name(c), Created: c, Complete: true})
	}
	ds := Plan(as, Policy{Last: 7}, base)
	keep, del := Split(ds)
	if len(keep) != 7 || len(del) != 3 {
		t.Fatalf("keep %v delete %v", keep, del)
	}
	if !slices.Equal(del, []string{as[0].Name, as[1].Name, as[2].Name}) {
		t.Fatalf("deleted %v, want the three oldest", del)
	}
	if got := ds[9].Reasons; !slices.Contains(got, "newest complete archive") || !slices.Contains(got, "last 1/7") {
		t.Fatalf("reasons of newest: %v", got)
	}
	if got := ds[0].Reasons; !reflect.DeepEqual(got, []string{"no rule keeps it"}) {
		t.Fatalf("reasons of oldest: %v", got)
	}
}

// After a naming change, names sort in the opposite order to creation
// times (wal-g #636): the newest by creation time must survive.
func TestOrdersByCreationNotName(t *testing.T) {
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	as := []Archive{
		{Name: "z_old_1", Created: base, Complete: true},
		{Name: "z_old_2", Created: base.Add(time.Hour), Complete: true},
		{Name: "a_new_1", Created: base.Add(2 * time.Hour), Complete: true},
		{Name: "a_new_2", Created: base.Add(3 * time.Hour), Complete: true},
	}
	keep, del := Split(Plan(as, Policy{Last: 2}, base))
	if !slices.Equal(keep, []string{"a_new_1", "a_new_2"}) || !slices.Equal(del, []string{"z_old_1", "z_old_2"}) {
		t.Fatalf("keep %v delete %v", keep, del)
	}
}

func TestIncompleteNeitherCountsNorIsDeleted(t *testing.T) {
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	as := []Archive{
		{Name: "a", Created: base, Complete: true},
		{Name: "b", Created: base.Add(time.Hour), Complete: true},
		{Name: "c", Created: base.Add(2 * time.Hour), Complete: false},
		{Name: "d", Created: base.Add(3 * time.Hour), Complete: false},
	}
	keep, del := Split(Plan(as, Policy{Last: 1}, base))
	if !slices.Equal(keep, []string{"b", "c", "d"}) || !slices.Equal(del, []string{"a"}) {
		t.Fatalf("keep %v delete %v", keep, del)
	}
}

func TestNewestCompleteFloor(t *testing.T) {
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	as := []Archive{
		{Name: "old", Created: base, Complete: true},
		{Name: "new", Created: base.Add(time.Hour), Complete: true},
	}
	// Within only, everything too old: the newest still survives.
	keep, del := Split(Plan(as, Policy{Within: time.Hour}, base.Add(100*24*time.Hour)))
	if !slices.Equal(keep, []string{"new"}) || !slices.Equal(del, []string{"old"}) {
		t.Fatalf("keep %v delete %v", keep, del)
	}
}

func TestZeroPolicyKeepsAll(t *testing.T) {
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	as := []Archive{{Name: "a", Created: base, Complete: true}, {Name: "b", Created: base, Complete: true}}
	if _, del := Split(Plan(as, Policy{}, base)); len(del) != 0 {
		t.Fatalf("deleted %v", del)
	}
	if err := (Policy{Daily: -1}).Validate(); err == nil {
		t.Fatal("negative keep_daily accepted")
	}
}

func TestPeriodsInTimeZone(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	// 22:30 UTC on 1 Jun is 00:30 on 2 Jun in Berlin: two Berlin days, one UTC day.
	a := time.Date(2026, 6, 1, 20, 0, 0, 0, time.UTC)
	b := time.Date(2026, 6, 1, 22, 30, 0, 0, time.UTC)
	as := []Archive{{Name: "a", Created: a, Complete: true}, {Name: "b", Created: b, Complete: true}}
	if k := kept(Plan(as, Policy{Daily: 2, Location: berlin}, b)); len(k) != 2 {
		t.Fatalf("berlin: kept %v", k)
	}
	if k := kept(Plan(as, Policy{Daily: 2}, b)); !slices.Equal(k, []string{"b"}) {
		t.Fatalf("utc: kept %v", k)
	}
}

// Periods without a backup do not use up a slot.
func TestPeriodsCountOnlyWhereABackupExists(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC).AddDate(0, 0, d) }
	var as []Archive
	for _, d := range []int{0, 1, 2, 10, 20, 30} { // gaps of days
		as = append(as, Archive{Name: fmt.Sprint("d", d), Created: day(d), Complete: true})
	}
	k := kept(Plan(as, Policy{Daily: 4}, day(30)))
	if !slices.Equal(k, []string{"d2", "d10", "d20", "d30"}) {
		t.Fatalf("kept %v", k)
	}
}

// Over 400 simulated days (backups at 03:00 and 15:00 Berlin time, the
// agent down for weeks, failed backups leaving nothing, a few archives
// without manifest), pruning after every successful backup ends with the
// same archives as one plan over the whole history, and the invariants
// hold after every step.
func TestFourHundredDays(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	p := Policy{Last: 5, Daily: 7, Weekly: 5, Monthly: 12, Yearly: 3, Location: berlin}
	rng := rand.New(rand.NewPCG(1, 2))
	var store, history []Archive
	start := time.Date(2025, 11, 1, 0, 0, 0, 0, berlin)
	steps := 0
	for d := range 400 {
		if d >= 100 && d < 130 || d >= 250 && d < 254 { // agent down
			continue
		}
		for _, hour := range []int{3, 15} {
			c := time.Date(start.Year(), start.Month(), start.Day()+d, hour, 0, 0, 0, berlin)
			switch r := rng.IntN(20); {
			case r == 0: // failed: nothing stored
				continue
			case r == 1: // stored, but no manifest
				a := Archive{Name: name(c), Created: c, Complete: false}
				store = append(store, a)
				history = append(history, a)
				continue
			}
			a := Archive{Name: name(c), Created: c, Complete: true}
			store = append(store, a)
			history = append(history, a)
			ds := Plan(store, p, c)
			checkInvariants(t, store, ds, p)
			_, del := Split(ds)
			store = slices.DeleteFunc(store, func(a Archive) bool { return slices.Contains(del, a.Name) })
			steps++
		}
	}
	if steps < 600 {
		t.Fatalf("only %d backups simulated", steps)
	}
	want := kept(Plan(history, p, history[len(history)-1].Created))
	var got []string
	for _, a := range store {
		got = append(got, a.Name)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("incremental pruning kept\n%v\none-shot plan keeps\n%v", got, want)
	}
	complete := 0
	for _, a := range store {
		if a.Complete {
			complete++
		}
	}
	// Upper bound: every rule's slots; lower bound: the monthly rule alone
	// needs 12 distinct months of the ~13 covered.
	if complete > p.Last+p.Daily+p.Weekly+p.Monthly+p.Yearly || complete < p.Monthly {
		t.Fatalf("%d complete archives kept", complete)
	}
	t.Logf("%d backups, %d archives kept (%d complete)", steps, len(store), complete)
}

func checkInvariants(t *testing.T, store []Archive, ds []Decision, p Policy) {
	t.Helper()
	if len(ds) != len(store) {
		t.Fatalf("%d decisions for %d archives", len(ds), len(store))
	}
	var newest *Archive
	for i := range store {
		if store[i].Complete && (newest == nil || store[i].Created.After(newest.Created)) {
			newest = &store[i]
		}
	}
	for i, d := range ds {
		if i > 0 && d.Created.Before(ds[i-1].Created) {
			t.Fatal("decisions not ordered by creation time")
		}
		if len(d.Reasons) == 0 {
			t.Fatalf("%s: no reason", d.Name)
		}
		if newest != nil && d.Name == newest.Name && !d.Keep {
			t.Fatalf("newest complete archive %s deleted", d.Name)
		}
	}
	for _, a := range store {
		if !a.Complete {
			for _, d := range ds {
				if d.Name == a.Name && !d.Keep {
					t.Fatalf("incomplete archive %s deleted", a.Name)
				}
			}
		}
	}
	// The newest Last complete archives are kept.
	var c []Archive
	for _, a := range store {
		if a.Complete {
			c = append(c, a)
		}
	}
	slices.SortFunc(c, func(a, b Archive) int { return b.Created.Compare(a.Created) })
	for i := 0; i < p.Last && i < len(c); i++ {
		for _, d := range ds {
			if d.Name == c[i].Name && !d.Keep {
				t.Fatalf("one of the last %d, %s, deleted", p.Last, d.Name)
			}
		}
	}
}

// TestPinnedKeptAndNotCounted: a pinned archive outlives keep_last 1, and
// takes no slot: the newest unpinned archive is kept beside it.
func TestPinnedKeptAndNotCounted(t *testing.T) {
	base := time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)
	var as []Archive
	for i := range 5 {
		c := base.Add(time.Duration(i) * time.Hour)
		as = append(as, Archive{Name: name(c), Created: c, Complete: true, Keys: 10})
	}
	as[1].Pinned = true
	as[4].Pinned = true // the newest: pinned, so the newest unpinned one is kept too
	ds := Plan(as, Policy{Last: 1}, base)
	keep, del := Split(ds)
	if !slices.Equal(keep, []string{as[1].Name, as[3].Name, as[4].Name}) {
		t.Fatalf("keep %v delete %v", keep, del)
	}
	if !slices.Contains(ds[1].Reasons, "pinned: never pruned, not counted") || slices.Contains(ds[4].Reasons, "last 1/1") {
		t.Fatalf("reasons %v / %v", ds[1].Reasons, ds[4].Reasons)
	}
	if !slices.Contains(ds[3].Reasons, "last 1/1") {
		t.Fatalf("newest unpinned: %v", ds[3].Reasons)
	}
	// No rule at all: everything kept, the pinned ones say so.
	if ds := Plan(as, Policy{}, base); !slices.Contains(ds[1].Reasons, "pinned") {
		t.Fatalf("no policy: %v", ds[1].Reasons)
	}
}

// TestPinnedYearOfGFS runs a year of daily backups, pruned after each one
// by a grandfather-father-son policy, with some archives pinned on the
// way (seeded). Every pinned archive survives the year, and the unpinned
// ones kept are exactly those the policy keeps when the pinned ones are not
// there at all: a pin takes no slot of any rule.
func TestPinnedYearOfGFS(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		rng := rand.New(rand.NewPCG(seed, 20))
		p := Policy{Last: 2, Daily: 7, Weekly: 4, Monthly: 12, Yearly: 1}
		base := time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)
		var stored []Archive
		pinned := map[string]bool{}
		for day := range 365 {
			c := base.Add(time.Duration(day)*24*time.Hour + time.Duration(rng.IntN(3600))*time.Second)
			a := Archive{Name: name(c), Created: c, Complete: true, Keys: 100 + int64(rng.IntN(10))}
			if rng.IntN(20) == 0 {
				a.Pinned = true
				pinned[a.Name] = true
			}
			stored = append(stored, a)
			keep, _ := Split(Plan(stored, p, c))
			next := stored[:0:0]
			for _, s := range stored {
				if slices.Contains(keep, s.Name) {
					next = append(next, s)
				}
			}
			stored = next
		}
		if len(pinned) == 0 {
			t.Fatalf("seed %d: nothing pinned: the test proves nothing", seed)
		}
		var unpinned []Archive
		for name := range pinned {
			if !slices.ContainsFunc(stored, func(a Archive) bool { return a.Name == name }) {
				t.Fatalf("seed %d: pinned %s was pruned", seed, name)
			}
		}
		for _, a := range stored {
			if !a.Pinned {
				unpinned = append(unpinned, a)
			}
		}
		now := stored[len(stored)-1].Created
		wantKeep, wantDel := Split(Plan(unpinned, p, now))
		var gotKeep []string
		for _, d := range Plan(stored, p, now) {
			if d.Keep && !pinned[d.Name] {
				gotKeep = append(gotKeep, d.Name)
			}
		}
		if !slices.Equal(gotKeep, wantKeep) || len(wantDel) != 0 {
			t.Fatalf("seed %d: unpinned kept %v, the policy without pins keeps %v (deletes %v)", seed, gotKeep, wantKeep, wantDel)
		}
		if n := len(unpinned); n < 12 || n > 2+7+4+12+1 {
			t.Fatalf("seed %d: %d unpinned archives after a year", seed, n)
		}
	}
}
