package retention

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// After a FLUSHALL, a week of scheduled backups of the empty server must
// leave every good archive that the policy kept before in place: empty
// archives are suspect, kept, and counted by no rule.
func TestEmptyBackupsPushNoGoodArchiveOut(t *testing.T) {
	day := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	var as []Archive
	for i := 0; i < 5; i++ {
		as = append(as, Archive{Name: fmt.Sprintf("good%d.json.gz", i), Created: day.Add(time.Duration(i) * 24 * time.Hour), Complete: true, Keys: 100_000 + int64(i), Size: 50 << 20})
	}
	for i := 0; i < 7*4; i++ { // every 6 hours for a week
		as = append(as, Archive{Name: fmt.Sprintf("empty%02d.json.gz", i), Created: day.Add(5*24*time.Hour + time.Duration(i)*6*time.Hour), Complete: true, Keys: 0, Size: 120})
	}
	for _, p := range []Policy{{Last: 3}, {Last: 1, Daily: 3}, {Daily: 7}, {Within: 48 * time.Hour}} {
		ds := Plan(as, p, day.Add(12*24*time.Hour))
		keep, del := Split(ds)
		for _, d := range ds {
			if strings.HasPrefix(d.Name, "empty") && (!d.Keep || !strings.Contains(strings.Join(d.Reasons, ";"), "suspect: 0 keys, after 100004 in good4.json.gz")) {
				t.Fatalf("policy %+v: %s: keep %v %v", p, d.Name, d.Keep, d.Reasons)
			}
		}
		// The newest good archive is kept by every policy.
		if !contains(keep, "good4.json.gz") {
			t.Fatalf("policy %+v: newest good archive deleted: del %v", p, del)
		}
		// What the policy keeps of the good archives is what it kept
		// before the empty ones came.
		before, _ := Split(Plan(as[:5], p, day.Add(5*24*time.Hour)))
		for _, n := range before {
			if !contains(keep, n) {
				t.Fatalf("policy %+v: %s was kept before the empty backups and is now deleted", p, n)
			}
		}
	}
}

func TestSuspectDrops(t *testing.T) {
	at := func(i int) time.Time { return time.Date(2026, 1, 1, i, 0, 0, 0, time.UTC) }
	as := []Archive{
		{Name: "a.json.gz", Created: at(0), Complete: true, Keys: 1000, Size: 10000},
		{Name: "b.json.gz", Created: at(1), Complete: true, Keys: 600, Size: 6000},    // -40%: fine
		{Name: "c.json.gz", Created: at(2), Complete: true, Keys: 250, Size: 2500},    // -58% against b: suspect
		{Name: "d.json.gz", Created: at(3), Complete: true, Keys: 290, Size: 2900},    // still against b: suspect
		{Name: "e.json", Created: at(4), Complete: true, Keys: 610, Size: 30000},      // other layers: size not compared
		{Name: "f.json.gz", Created: at(5), Complete: true, Keys: 620, Size: 1000},    // size -97% against e? other layers: no
		{Name: "g.json.gz", Created: at(6), Complete: true, Keys: 630, Size: 400},     // size -60% against f: suspect
		{Name: "h.json.gz", Created: at(7), Complete: false, Keys: -1, Size: 10},      // incomplete: never judged
		{Name: "i.json.gz", Created: at(8), Complete: true, Keys: 0, Size: 100},       // 0 keys: suspect
		{Name: "j.json.gz", Created: at(9), Complete: true, Keys: 640, Size: 900},     // back to normal
		{Name: "k.json.gz", Created: at(10), Complete: true, Keys: 100, Size: 900000}, // keys fall: suspect
	}
	got := Suspects(as, 0)
	want := []string{"c.json.gz", "d.json.gz", "g.json.gz", "i.json.gz", "k.json.gz"}
	if len(got) != len(want) {
		t.Fatalf("suspects %v, want %v", got, want)
	}
	for _, n := range want {
		if got[n] == "" {
			t.Fatalf("%s not suspect: %v", n, got)
		}
	}
	if n := len(Suspects(as, 1)); n != 0 {
		t.Fatalf("guard off: %d suspects", n)
	}
	if n := len(Suspects(as, 0.9)); n != 1 { // only the 0-key one
		t.Fatalf("drop 0.9: %d suspects", n)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
