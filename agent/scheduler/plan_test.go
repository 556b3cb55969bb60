package scheduler_test

import (
	"strings"
	"testing"
	"time"

	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/agent/scheduler"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func mustPlan(t *testing.T, s config.Schedule) *scheduler.Plan {
	t.Helper()
	p, err := scheduler.NewPlan(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// slots lists the calendar slots in (from, to].
func slots(p *scheduler.Plan, from, to time.Time) []time.Time {
	var out []time.Time
	for s := p.NextSlot(from); !s.IsZero() && !s.After(to); s = p.NextSlot(s) {
		out = append(out, s)
	}
	return out
}

// DST nights in both zones (2026): Berlin springs forward on 29 March
// (02:00 CET -> 03:00 CEST) and falls back on 25 October (03:00 CEST ->
// 02:00 CET); New York on 8 March (02:00 EST -> 03:00 EDT) and 1 November
// (02:00 EDT -> 01:00 EST).
var dstNights = []struct {
	zone string
	day  time.Time // local date of the change
}{
	{"Europe/Berlin", time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)},
	{"Europe/Berlin", time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC)},
	{"America/New_York", time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC)},
	{"America/New_York", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
}

// A daily time fires exactly once on each local day around a DST change:
// at that wall time when it exists, at the end of the gap when it does not,
// and at its first occurrence when it occurs twice.
func TestDailyAcrossDST(t *testing.T) {
	for _, n := range dstNights {
		loc := mustLoc(t, n.zone)
		for _, at := range []string{"03:00", "02:30", "01:30", "00:00", "23:59"} {
			p := mustPlan(t, config.Schedule{DailyAt: at, Timezone: n.zone})
			from := time.Date(n.day.Year(), n.day.Month(), n.day.Day()-3, 23, 59, 30, 0, loc)
			to := time.Date(n.day.Year(), n.day.Month(), n.day.Day()+3, 23, 59, 30, 0, loc)
			got := slots(p, from, to)
			if len(got) != 6 {
				t.Fatalf("%s daily %s: %d slots %v, want 6 (one a day)", n.zone, at, len(got), got)
			}
			for i, s := range got {
				l := s.In(loc)
				wantDay := time.Date(n.day.Year(), n.day.Month(), n.day.Day()-2+i, 0, 0, 0, 0, loc)
				if l.Day() != wantDay.Day() {
					t.Errorf("%s daily %s: slot %d on day %d, want %d (%v)", n.zone, at, i, l.Day(), wantDay.Day(), got)
				}
				if l.Format("15:04") != at {
					// Only in the gap may the wall time differ: then it is the
					// first instant after the gap, one hour later on the clock.
					gap := s.Add(-time.Nanosecond).In(loc)
					if _, o1 := gap.Zone(); func() bool { _, o2 := l.Zone(); return o1 == o2 }() {
						t.Errorf("%s daily %s: slot at %s outside a gap", n.zone, at, l.Format(time.RFC3339))
					}
				}
			}
		}
	}
}

func TestGapAndRepeatDetails(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	ny := mustLoc(t, "America/New_York")
	for _, c := range []struct {
		zone, at string
		from     time.Time
		want     string // RFC 3339 in the zone
	}{
		{"Europe/Berlin", "02:30", time.Date(2026, 3, 29, 0, 0, 0, 0, berlin), "2026-03-29T03:00:00+02:00"},
		{"Europe/Berlin", "02:30", time.Date(2026, 10, 25, 0, 0, 0, 0, berlin), "2026-10-25T02:30:00+02:00"},
		{"America/New_York", "02:30", time.Date(2026, 3, 8, 0, 0, 0, 0, ny), "2026-03-08T03:00:00-04:00"},
		{"America/New_York", "01:30", time.Date(2026, 11, 1, 0, 0, 0, 0, ny), "2026-11-01T01:30:00-04:00"},
		{"America/New_York", "03:00", time.Date(2026, 3, 8, 0, 0, 0, 0, ny), "2026-03-08T03:00:00-04:00"},
		{"Europe/Berlin", "03:00", time.Date(2026, 10, 25, 0, 0, 0, 0, berlin), "2026-10-25T03:00:00+01:00"},
	} {
		p := mustPlan(t, config.Schedule{DailyAt: c.at, Timezone: c.zone})
		got := p.NextSlot(c.from).In(c.from.Location()).Format(time.RFC3339)
		if got != c.want {
			t.Errorf("%s %s after %v: %s, want %s", c.zone, c.at, c.from, got, c.want)
		}
	}
	// The second 01:30 of New York's fall-back night is not a slot.
	p := mustPlan(t, config.Schedule{DailyAt: "01:30", Timezone: "America/New_York"})
	first := time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC) // 01:30 EDT
	if next := p.NextSlot(first); next.Sub(first) < 24*time.Hour {
		t.Fatalf("after the first 01:30, next slot %v", next.In(ny))
	}
}

func TestCronAcrossDST(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	p := mustPlan(t, config.Schedule{Cron: []string{"*/15 * * * *"}, Timezone: "Europe/Berlin"})
	day := func(y int, m time.Month, d int) (time.Time, time.Time) {
		return time.Date(y, m, d, 0, 0, 0, 0, berlin).Add(-time.Nanosecond), time.Date(y, m, d+1, 0, 0, 0, 0, berlin).Add(-time.Nanosecond)
	}
	// A 23-hour day: the four slots of the missing hour fold into 03:00.
	from, to := day(2026, 3, 29)
	if n := len(slots(p, from, to)); n != 92 {
		t.Fatalf("spring-forward day: %d slots, want 92", n)
	}
	// A 25-hour day: the repeated hour runs once.
	from, to = day(2026, 10, 25)
	if n := len(slots(p, from, to)); n != 96 {
		t.Fatalf("fall-back day: %d slots, want 96", n)
	}
	// Weekdays at 09:00 and descriptors.
	p = mustPlan(t, config.Schedule{Cron: []string{"0 9 * * 1-5", "@monthly"}, Timezone: "Europe/Berlin"})
	from = time.Date(2026, 5, 29, 12, 0, 0, 0, berlin) // a Friday
	got := slots(p, from, from.Add(7*24*time.Hour))
	var s []string
	for _, g := range got {
		s = append(s, g.In(berlin).Format("Mon 02 15:04"))
	}
	if strings.Join(s, ",") != "Mon 01 00:00,Mon 01 09:00,Tue 02 09:00,Wed 03 09:00,Thu 04 09:00,Fri 05 09:00" {
		t.Fatalf("slots %v", s)
	}
}

func TestIntervalOnTheWallClock(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	p := mustPlan(t, config.Schedule{IntervalHours: 24, Timezone: "Europe/Berlin"})
	// 24 h from 03:00 the day before spring forward is 03:00 the next day
	// (23 real hours), and before fall-back 25 real hours.
	last := time.Date(2026, 3, 28, 3, 0, 0, 0, berlin)
	if got := p.NextInterval(last); got.Sub(last) != 23*time.Hour || got.In(berlin).Hour() != 3 {
		t.Fatalf("spring: %v", got.In(berlin))
	}
	last = time.Date(2026, 10, 24, 3, 0, 0, 0, berlin)
	if got := p.NextInterval(last); got.Sub(last) != 25*time.Hour || got.In(berlin).Hour() != 3 {
		t.Fatalf("fall: %v", got.In(berlin))
	}
	// Fractional hours are real time.
	p = mustPlan(t, config.Schedule{IntervalHours: 1.5, Timezone: "Europe/Berlin"})
	last = time.Date(2026, 3, 29, 1, 0, 0, 0, berlin)
	if got := p.NextInterval(last); got.Sub(last) != 90*time.Minute {
		t.Fatalf("1.5 h: %v", got.Sub(last))
	}
}

func TestPlanErrors(t *testing.T) {
	for _, c := range []struct {
		s    config.Schedule
		want string
	}{
		{config.Schedule{DailyAt: "3am"}, "schedule.daily_at"},
		{config.Schedule{DailyAt: "24:00"}, "schedule.daily_at"},
		{config.Schedule{DailyAt: "03:00", Timezone: "Mars/Olympus"}, "schedule.timezone"},
		{config.Schedule{Cron: []string{"0 3 * *"}}, "schedule.cron[0]"},
		{config.Schedule{Cron: []string{"CRON_TZ=UTC 0 3 * * *"}}, "schedule.timezone instead"},
		{config.Schedule{Cron: []string{"@every 1h"}}, "interval_hours instead"},
		{config.Schedule{IntervalHours: -1}, "schedule.interval_hours"},
		{config.Schedule{IntervalHours: 0.001}, "less than 10 seconds"},
		{config.Schedule{DailyAt: "03:00", Jitter: -time.Second}, "schedule.jitter"},
		{config.Schedule{}, "nothing would ever run"},
	} {
		_, err := scheduler.NewPlan(c.s)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want %q", c.s, err, c.want)
		}
	}
	p := mustPlan(t, config.Schedule{IntervalHours: 24, DailyAt: "03:00", Timezone: "UTC"})
	if p.String() != "every 24h0m0s, daily at 03:00 (UTC)" {
		t.Fatalf("String %q", p.String())
	}
}
