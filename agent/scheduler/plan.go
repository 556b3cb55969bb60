package scheduler

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/redback-dev/redback/agent/config"
)

// Plan is when backups are due: calendar slots (the daily time and cron
// expressions, on the wall clock of Location) and an interval since the last
// backup.
//
// Daylight saving time: slots are computed on the wall clock, then placed on
// the time line. A wall time that occurs twice (the night clocks go back) is
// used once, at its first occurrence; a wall time that does not exist (the
// night clocks go forward) moves to the first instant after the gap. So a
// daily slot fires exactly once on every local day.
type Plan struct {
	// Interval is the longest time between two backups, 0 for none. A whole
	// number of hours steps on the wall clock (24 h from 03:00 is 03:00 the
	// next day, however long that day is); anything else in real time.
	Interval time.Duration
	// Location is the time zone of the wall clock.
	Location *time.Location

	specs []cron.Schedule
	descs []string
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// NewPlan checks a schedule section and returns its plan. The errors name
// the offending key.
// minInterval is the shortest interval accepted (the seed's examples go down
// to `0.01` hours, 36 seconds, for trying a schedule out).
const minInterval = 10 * time.Second

func NewPlan(s config.Schedule) (*Plan, error) {
	p := &Plan{Location: time.Local}
	if s.Timezone != "" {
		loc, err := time.LoadLocation(s.Timezone)
		if err != nil {
			return nil, fmt.Errorf("schedule.timezone: %q is not an IANA time zone name (like Europe/Berlin)", s.Timezone)
		}
		p.Location = loc
	}
	if s.IntervalHours < 0 || math.IsNaN(s.IntervalHours) || math.IsInf(s.IntervalHours, 0) {
		return nil, fmt.Errorf("schedule.interval_hours: %v: want a positive number of hours, or 0 for none", s.IntervalHours)
	}
	if s.IntervalHours > 0 {
		p.Interval = time.Duration(s.IntervalHours * float64(time.Hour)).Round(time.Second)
		if p.Interval < minInterval {
			return nil, fmt.Errorf("schedule.interval_hours: %v is less than 10 seconds", s.IntervalHours)
		}
	}
	if s.Jitter < 0 {
		return nil, fmt.Errorf("schedule.jitter: %v is negative", s.Jitter)
	}
	if d := strings.TrimSpace(s.DailyAt); d != "" {
		var h, m int
		var rest string
		n, _ := fmt.Sscanf(d+" x", "%d:%d %s", &h, &m, &rest)
		if n != 3 || rest != "x" || h < 0 || h > 23 || m < 0 || m > 59 || len(d) > 5 {
			return nil, fmt.Errorf("schedule.daily_at: %q: want HH:MM, like 03:00", s.DailyAt)
		}
		if err := p.addCron(fmt.Sprintf("%d %d * * *", m, h), "daily at "+d); err != nil {
			return nil, err
		}
	}
	for i, c := range s.Cron {
		if err := p.addCron(c, c); err != nil {
			return nil, fmt.Errorf("schedule.cron[%d]: %w", i, err)
		}
	}
	if p.Interval == 0 && len(p.specs) == 0 {
		return nil, errors.New("schedule: no interval_hours, daily_at or cron: nothing would ever run")
	}
	return p, nil
}

func (p *Plan) addCron(expr, desc string) error {
	e := strings.TrimSpace(expr)
	if strings.HasPrefix(e, "TZ=") || strings.HasPrefix(e, "CRON_TZ=") {
		return fmt.Errorf("%q: set schedule.timezone instead of a TZ= prefix", expr)
	}
	if strings.HasPrefix(e, "@every") {
		return fmt.Errorf("%q: use schedule.interval_hours instead of @every", expr)
	}
	sch, err := cronParser.Parse(e)
	if err != nil {
		return fmt.Errorf("%q: %v (want five fields: minute hour day-of-month month day-of-week)", expr, err)
	}
	p.specs = append(p.specs, sch)
	p.descs = append(p.descs, desc)
	return nil
}

// String describes the plan for logs.
func (p *Plan) String() string {
	var parts []string
	if p.Interval > 0 {
		parts = append(parts, "every "+p.Interval.String())
	}
	parts = append(parts, p.descs...)
	return strings.Join(parts, ", ") + " (" + p.Location.String() + ")"
}

// NextSlot returns the first calendar slot strictly after t, or the zero
// time when there is none (no daily time or cron expression, or none
// within five years).
func (p *Plan) NextSlot(t time.Time) time.Time {
	var best time.Time
	for _, s := range p.specs {
		n := p.nextOf(s, t)
		if !n.IsZero() && (best.IsZero() || n.Before(best)) {
			best = n
		}
	}
	return best
}

func (p *Plan) nextOf(s cron.Schedule, t time.Time) time.Time {
	w := wall(t, p.Location)
	for range 10000 {
		w = s.Next(w)
		if w.IsZero() {
			return time.Time{}
		}
		if inst := resolve(w, p.Location); inst.After(t) {
			return inst
		}
	}
	return time.Time{}
}

// NextInterval returns when the interval since a backup at last runs out:
// the zero time without an interval.
func (p *Plan) NextInterval(last time.Time) time.Time {
	if p.Interval <= 0 {
		return time.Time{}
	}
	if p.Interval%time.Hour == 0 {
		if n := resolve(wall(last, p.Location).Add(p.Interval), p.Location); n.After(last) {
			return n
		}
	}
	return last.Add(p.Interval)
}

// wall returns the wall-clock reading of t in loc as a UTC time (a time
// line without daylight saving time).
func wall(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

// resolve places the wall-clock reading w (a UTC time, see wall) in loc:
// the earliest instant that reads w, or, when no instant does (a gap when
// clocks go forward), the end of the gap.
func resolve(w time.Time, loc *time.Location) time.Time {
	var best time.Time
	var gapEnd time.Time
	for _, probe := range []time.Duration{-36 * time.Hour, 0, 36 * time.Hour} {
		_, off := w.Add(probe).In(loc).Zone()
		inst := w.Add(-time.Duration(off) * time.Second)
		if _, o2 := inst.In(loc).Zone(); o2 == off {
			if best.IsZero() || inst.Before(best) {
				best = inst
			}
			continue
		}
		// inst reads later than w in its true zone only when it is in the
		// zone after a forward change; the change is where its zone began.
		if wall(inst, loc).After(w) {
			start, _ := inst.In(loc).ZoneBounds()
			if !start.IsZero() && (gapEnd.IsZero() || start.Before(gapEnd)) {
				gapEnd = start
			}
		}
	}
	if !best.IsZero() {
		return best
	}
	if !gapEnd.IsZero() {
		return gapEnd
	}
	return time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), loc)
}
