package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/internal/redistest"
)

// TestRestoreAtRoute: POST /api/backup/restore {"at"} needs a fresh code,
// refuses what does not apply, and, with overwrite, gives the server back
// the state of that time (a FLUSHALL after it undone), saying what it
// reached.
func TestRestoreAtRoute(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, func(c *config.Config, _ *Options) {
		c.Archiving = config.Archiving{Enabled: true, SegmentSeconds: 0.1}
	})
	rc := h.redis.Client(t, 0)
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.svc.RunArchiving(actx) }()
	defer func() { stop(); <-done }()
	received := func() int64 {
		st, _ := h.svc.ArchivingStatus()
		if !st.Connected {
			return -1
		}
		return st.Received
	}
	offset := func() int64 {
		text, err := rc.Info(ctx, "replication").Result()
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.ParseInt(redistest.ParseInfo(text)["master_repl_offset"], 10, 64)
		return n
	}
	caughtUp := func() {
		want := offset()
		deadline := time.Now().Add(time.Minute)
		for received() < want {
			if time.Now().After(deadline) {
				t.Fatal("the archiver does not catch up")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	caughtUp() // connected, past its base
	for i := range 50 {
		if err := rc.Set(ctx, "k"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	caughtUp()
	at := time.Now().UTC().Format(time.RFC3339Nano)
	time.Sleep(3 * time.Millisecond)
	if err := rc.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.Set(ctx, "after", 1, 0).Err(); err != nil {
		t.Fatal(err)
	}
	caughtUp()
	// The window reaches past the FLUSHALL once its segment is stored.
	deadline := time.Now().Add(time.Minute)
	for {
		st, _ := h.svc.ArchivingStatus()
		if st.Durable >= offset() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not durable")
		}
		time.Sleep(5 * time.Millisecond)
	}

	tok := h.login(secretAdmin)
	h.clock.Advance(30 * time.Second)
	for _, body := range []string{`{"at":"yesterday"}`, `{"at":"` + at + `","filename":"latest"}`, `{"at":"` + at + `","db":0}`} {
		if r := h.do("POST", "/api/backup/restore", body, with(auth(tok), "X-TOTP-Code", h.code(secretAdmin, 0))); r.code != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", body, r.code, r.body)
		}
	}
	if r := h.do("POST", "/api/backup/restore", `{"at":"`+at+`","overwrite":true}`, auth(tok)); r.code != http.StatusForbidden {
		t.Fatalf("without a fresh code: %d %s", r.code, r.body)
	}
	h.clock.Advance(30 * time.Second)
	r := h.do("POST", "/api/backup/restore", `{"at":"`+at+`","overwrite":true}`, with(auth(tok), "X-TOTP-Code", h.code(secretAdmin, 0)))
	if r.code != http.StatusOK {
		t.Fatalf("restore at: %d %s", r.code, r.body)
	}
	var res agent.RestoreResult
	if err := json.Unmarshal(r.body, &res); err != nil || res.PointInTime == nil || res.PointInTime.Commands < 50 || !res.Success {
		t.Fatalf("result %s (%v)", r.body, err)
	}
	n, err := rc.DBSize(ctx).Result()
	if err != nil || n != 50 || rc.Exists(ctx, "after").Val() != 0 {
		t.Fatalf("after the restore: %d keys (%v), after=%d", n, err, rc.Exists(ctx, "after").Val())
	}
	if !strings.HasPrefix(res.PointInTime.At, at[:19]) {
		t.Fatalf("at %s, asked %s", res.PointInTime.At, at)
	}
}
