package main

import (
	"io"
	"os"
	"sync"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/redback-dev/redback/agent"
)

// barLine is the terminal line a progress bar is drawn on. Log records
// written while a bar is drawn first clear its line (the bar is drawn
// again at its next update), so that no record lands in the middle of it.
type barLine struct {
	mu     sync.Mutex
	w      io.Writer
	active bool
}

// clearSeq returns the cursor to the start of the line and erases it.
const clearSeq = "\r\x1b[K"

func (b *barLine) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.active {
		if _, err := io.WriteString(b.w, clearSeq); err != nil {
			return 0, err
		}
	}
	return b.w.Write(p)
}

// logWriter is where the logger writes: stderr, through the bar's line.
func (g *globals) logWriter() io.Writer {
	if g.bar == nil {
		g.bar = &barLine{w: g.stderr}
	}
	return g.bar
}

// progress returns a callback that draws a progress bar on stderr, and a
// func that finishes it: the bar is drawn at 100% and its line ended, so
// that what is printed next (the summary) starts on a line of its own.
// Both do nothing when stderr is not a terminal or when quiet (--json).
func (g *globals) progress(desc string, quiet bool) (func(agent.Progress), func()) {
	f, ok := g.stderr.(*os.File)
	if quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, func() {}
	}
	line := g.logWriter().(*barLine)
	var bar *progressbar.ProgressBar
	update := func(p agent.Progress) {
		line.mu.Lock()
		defer line.mu.Unlock()
		if bar == nil {
			bar = progressbar.NewOptions64(p.KeysTotal,
				progressbar.OptionSetWriter(f),
				progressbar.OptionSetDescription(desc),
				progressbar.OptionShowCount(),
				progressbar.OptionShowIts(),
				progressbar.OptionSetItsString("keys"),
				progressbar.OptionThrottle(100_000_000),
				progressbar.OptionSetPredictTime(true),
			)
			line.active = true
		}
		if p.KeysTotal > 0 && p.KeysDone > p.KeysTotal {
			bar.ChangeMax64(p.KeysDone)
		}
		// The bar reaches its end only in finish: once there it is never
		// drawn again, and the agent's last log records (cleared lines)
		// come before finish, so the last thing drawn would be a record
		// instead of the bar at 100%.
		_ = bar.Set64(min(p.KeysDone, bar.GetMax64()-1))
	}
	finish := func() {
		line.mu.Lock()
		defer line.mu.Unlock()
		if bar != nil {
			// Keys the selection left out, or that expired, are done too.
			_ = bar.Set64(bar.GetMax64())
			_, _ = io.WriteString(f, "\n")
			line.active = false
		}
	}
	return update, finish
}
