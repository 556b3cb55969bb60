package main

import (
	"io"
	"os"
	"sync"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/redback-dev/redback/agent"
)

// progress returns a callback that draws a progress bar on stderr, and a
// func that finishes it; both do nothing when stderr is not a terminal or
// when quiet (--json).
func (g *globals) progress(desc string, quiet bool) (func(agent.Progress), func()) {
	f, ok := g.stderr.(*os.File)
	if quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, func() {}
	}
	var (
		mu  sync.Mutex
		bar *progressbar.ProgressBar
	)
	update := func(p agent.Progress) {
		mu.Lock()
		defer mu.Unlock()
		if bar == nil {
			bar = progressbar.NewOptions64(p.KeysTotal,
				progressbar.OptionSetWriter(f),
				progressbar.OptionSetDescription(desc),
				progressbar.OptionShowCount(),
				progressbar.OptionShowIts(),
				progressbar.OptionSetItsString("keys"),
				progressbar.OptionThrottle(100_000_000),
				progressbar.OptionClearOnFinish(),
				progressbar.OptionSetPredictTime(true),
			)
		}
		if p.KeysTotal > 0 && p.KeysDone > p.KeysTotal {
			bar.ChangeMax64(p.KeysDone)
		}
		_ = bar.Set64(p.KeysDone)
	}
	finish := func() {
		mu.Lock()
		defer mu.Unlock()
		if bar != nil {
			_ = bar.Finish()
			_, _ = io.WriteString(f, "")
		}
	}
	return update, finish
}
