package archiving

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/agent/engine/replica"
	"github.com/redback-dev/redback/internal/redistest"
	"github.com/redback-dev/redback/sinks"
)

// rdbBase stores a base as a plain archive holding the raw RDB (what the
// agent writes is its business; the archiver only needs the manifest's
// replid and offset).
type rdbBase struct {
	sink *sinks.Sink
	mu   sync.Mutex
	n    int
}

func (b *rdbBase) Base(ctx context.Context, snap *replica.Snapshot, gap string) (string, error) {
	b.mu.Lock()
	b.n++
	n := b.n
	b.mu.Unlock()
	name := sinks.NewName(time.Date(2026, 1, 1, 0, 0, n, 0, time.UTC), false, false)
	w, err := b.sink.Create(ctx, name)
	if err != nil {
		return "", err
	}
	defer w.Abort()
	if _, err := io.Copy(w, snap); err != nil {
		return "", err
	}
	_, err = w.Commit(sinks.Manifest{CreatedAt: time.Now(), Source: map[string]string{
		ManifestReplID: snap.ReplID, ManifestOffset: strconv.FormatInt(snap.Offset, 10), ManifestGap: gap}})
	return name, err
}

func startArchiver(t *testing.T, o Options) (*Archiver, func()) {
	t.Helper()
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := a.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return a, stop
}

func info(t *testing.T, c *redis.Client) map[string]string {
	t.Helper()
	text, err := c.Info(context.Background(), "replication").Result()
	if err != nil {
		t.Fatal(err)
	}
	return redistest.ParseInfo(text)
}

// ackedOffset is the offset the server last heard from its one replica.
func ackedOffset(t *testing.T, c *redis.Client) (int64, bool) {
	t.Helper()
	for _, f := range strings.Split(info(t, c)["slave0"], ",") {
		if v, ok := strings.CutPrefix(f, "offset="); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n, true
		}
	}
	return 0, false
}

// TestSegmentsWholeOrderedAcked: under a writer of plain commands and
// MULTI/EXEC blocks bigger than a segment, the stored segments follow each
// other byte for byte from the base's offset to the server's, no segment
// ends inside a block, no command or block begins past
// segment_bytes, and the server never hears an ACK beyond what is
// durable; once the writer stops it hears the durable end.
// (segment_bytes is crossed by the segment's last command or block.)
func TestSegmentsWholeOrderedAcked(t *testing.T) {
	ctx := context.Background()
	src := redistest.StartServer(t, "redis-8", "--repl-diskless-sync-delay", "0")
	c := src.Client(t, 0)
	sink, err := sinks.Open(ctx, filepath.Join(t.TempDir(), "backups"))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	const segBytes = 4096
	a, stop := startArchiver(t, Options{
		Replica: replica.Options{Network: "unix", Addr: src.Socket, ReadTimeout: 10 * time.Second},
		Sink:    sink, Bases: &rdbBase{sink: sink}, SegmentSeconds: 50 * time.Millisecond, SegmentBytes: segBytes,
	})
	redistest.WaitFor(t, "the archiver to connect", func() bool { return a.Status().Connected })
	rng := rand.New(rand.NewPCG(4, 5))
	dbs := []*redis.Client{c, src.Client(t, 1), src.Client(t, 2), src.Client(t, 3)}
	for i := range 400 {
		switch rng.IntN(3) {
		case 0:
			_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
				for j := range 1 + rng.IntN(20) {
					p.Set(ctx, fmt.Sprintf("tx%d", j), strings.Repeat("x", rng.IntN(600)), 0)
				}
				return nil
			})
		case 1:
			err = dbs[rng.IntN(len(dbs))].Set(ctx, fmt.Sprint("k", i), i, 0).Err()
		default:
			err = c.RPush(ctx, "list", strings.Repeat("y", rng.IntN(3000))).Err()
		}
		if err != nil {
			t.Fatal(err)
		}
		if i%20 == 0 {
			// Read the ACK first: durable only grows.
			if acked, ok := ackedOffset(t, c); ok && acked > a.Status().Durable {
				t.Fatalf("the server heard ACK %d beyond the durable %d", acked, a.Status().Durable)
			}
		}
	}
	end, _ := strconv.ParseInt(info(t, c)["master_repl_offset"], 10, 64)
	redistest.WaitFor(t, "durable to reach the end", func() bool { return a.Status().Durable >= end })
	redistest.WaitFor(t, "the server to hear the durable end", func() bool {
		acked, _ := ackedOffset(t, c)
		return acked >= end
	})
	stop()

	w, err := Load(ctx, sink)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Chains) != 1 || len(w.Orphans) != 0 || len(w.Gaps) != 0 || len(w.Chains[0].Segments) < 10 {
		t.Fatalf("window: %d chains, %d orphans, %d gaps", len(w.Chains), len(w.Orphans), len(w.Gaps))
	}
	ch := w.Chains[0]
	if ch.LastOffset < end {
		t.Fatalf("the chain ends at %d, the server at %d", ch.LastOffset, end)
	}
	next := ch.Base.Offset + 1
	var commands int64
	for _, s := range ch.Segments {
		rc, err := sink.OpenSegment(ctx, s.Name)
		if err != nil {
			t.Fatal(err)
		}
		sr, err := readSegment(rc, nil)
		if err != nil {
			t.Fatal(err)
		}
		if sr.Header.FirstOffset != next || s.First != next {
			t.Fatalf("%s starts at %d, want %d", s.Name, sr.Header.FirstOffset, next)
		}
		depth, bytes, pastLimit := 0, 0, 0
		for {
			cmd, _, end, err := sr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", s.Name, err)
			}
			args, err := parseArgs(cmd)
			if err != nil {
				t.Fatal(err)
			}
			if bytes >= segBytes && depth == 0 {
				pastLimit++
			}
			switch strings.ToUpper(string(args[0])) {
			case "MULTI":
				depth++
			case "EXEC":
				depth--
			}
			bytes += len(cmd)
			next = end + 1
			commands++
		}
		rc.Close()
		if depth != 0 {
			t.Fatalf("%s ends inside a MULTI/EXEC block", s.Name)
		}
		if pastLimit > 0 {
			t.Fatalf("%s holds %d commands begun past segment_bytes", s.Name, pastLimit)
		}
		if sr.Trailer.LastOffset != s.Last {
			t.Fatalf("%s: trailer ends at %d, the name says %d", s.Name, sr.Trailer.LastOffset, s.Last)
		}
	}
	if next-1 != ch.LastOffset || commands < 400 {
		t.Fatalf("read up to %d (%d commands), the chain ends at %d", next-1, commands, ch.LastOffset)
	}
}
