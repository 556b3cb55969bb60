package replica

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/internal/datagen"
	"github.com/redback-dev/redback/internal/redistest"
)

func optionsOf(s *redistest.Server) Options {
	return Options{Network: "unix", Addr: s.Socket, StartTimeout: 30 * time.Second, ReadTimeout: 10 * time.Second, RDBOnly: true}
}

func digest(t *testing.T, c *redis.Client) string {
	t.Helper()
	d, err := c.Do(context.Background(), "DEBUG", "DIGEST").Text()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestSnapshotLoadsInto fetches a snapshot from every server of the matrix,
// disk-based and diskless, and loads it into a fresh server of the same
// kind: the data is the source's (DEBUG DIGEST), and the snapshot sits at
// the source's replication offset.
func TestSnapshotLoadsInto(t *testing.T) {
	for _, name := range redistest.Matrix {
		for _, diskless := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/diskless=%v", name, diskless), func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				yes := map[bool]string{true: "yes", false: "no"}[diskless]
				src := redistest.StartServer(t, name, "--repl-diskless-sync", yes, "--repl-diskless-sync-delay", "0")
				c := src.Client(t, 0)
				if err := datagen.Fill(ctx, c, datagen.Spec{Keys: 3000, TTLPercent: 10, Seed: 3}); err != nil {
					t.Fatal(err)
				}
				want := digest(t, c)

				snap, err := Fetch(ctx, optionsOf(src))
				if err != nil {
					t.Fatal(err)
				}
				defer snap.Close()
				// Valkey 9 streams to an EOF-capable replica with the EOF
				// mark whatever repl-diskless-sync says (observed on 9.1.2);
				// the others follow the setting.
				if snap.Diskless != diskless && !(name == "valkey-9" && snap.Diskless) {
					t.Errorf("diskless %v, want %v", snap.Diskless, diskless)
				}
				if len(snap.ReplID) != 40 || snap.Offset < 0 {
					t.Errorf("replid %q offset %d", snap.ReplID, snap.Offset)
				}
				// Odd read sizes cross the mark's hold-back.
				rdb, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(snap, 1<<30)))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.HasPrefix(rdb, []byte("REDIS")) && !bytes.HasPrefix(rdb, []byte("VALKEY")) {
					t.Fatalf("snapshot starts with %q", rdb[:min(9, len(rdb))])
				}
				if len(rdb) < 9 || rdb[len(rdb)-9] != 0xFF {
					t.Fatalf("snapshot does not end with EOF and a checksum (%d bytes)", len(rdb))
				}
				if n, err := snap.Read(make([]byte, 1)); n != 0 || err != io.EOF {
					t.Fatalf("read after the end: %d %v", n, err)
				}

				dir := t.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "dump.rdb"), rdb, 0o600); err != nil {
					t.Fatal(err)
				}
				dst, err := redistest.StartDirServer(dir, name, "--dbfilename", "dump.rdb")
				if err != nil {
					t.Fatal(err)
				}
				defer dst.Stop()
				if got := digest(t, dst.Client(t, 0)); got != want {
					t.Fatalf("the loaded snapshot's digest %s, the source's %s", got, want)
				}
				info, err := src.Info("replication")
				if err != nil {
					t.Fatal(err)
				}
				if info["master_replid"] != snap.ReplID {
					t.Errorf("replid %s, the server's %s", snap.ReplID, info["master_replid"])
				}
			})
		}
	}
}

// TestRefused: an account without PSYNC, a wrong password, a replica
// that is itself not ready: ErrRefused (or AUTH's error), with no secret in
// the message.
func TestRefused(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t, "--requirepass", "s3cret-pass")
	admin := redis.NewClient(&redis.Options{Network: "unix", Addr: src.Socket, Password: "s3cret-pass"})
	defer admin.Close()
	if err := admin.Do(ctx, "ACL", "SETUSER", "nosync", "on", ">other-pass", "~*", "+@all", "-psync", "-sync").Err(); err != nil {
		t.Fatal(err)
	}
	o := optionsOf(src)
	o.Username, o.Password = "nosync", "other-pass"
	_, err := Fetch(ctx, o)
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("no PSYNC permission: %v", err)
	}
	o.Username, o.Password = "", "wrong-pass"
	_, err = Fetch(ctx, o)
	if err == nil || errors.Is(err, ErrRefused) || strings.Contains(err.Error(), "wrong-pass") {
		t.Fatalf("wrong password: %v", err)
	}
	o.Password = "s3cret-pass"
	snap, err := Fetch(ctx, o)
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	if _, err := io.Copy(io.Discard, snap); err != nil {
		t.Fatal(err)
	}
	snap.Close()
}

// TestKilledMidTransfer: the server kills the replica (CLIENT KILL TYPE
// replica) in the middle of a large diskless transfer: the reader fails
// with io.ErrUnexpectedEOF, never a clean end.
func TestKilledMidTransfer(t *testing.T) {
	ctx := context.Background()
	for _, diskless := range []string{"yes", "no"} {
		t.Run("diskless="+diskless, func(t *testing.T) {
			src := redistest.Start(t, "--repl-diskless-sync", diskless, "--repl-diskless-sync-delay", "0", "--rdbcompression", "no")
			c := src.Client(t, 0)
			big := strings.Repeat("x", 1<<20)
			for i := range 64 {
				c.Set(ctx, fmt.Sprintf("big:%d", i), big, 0)
			}
			snap, err := Fetch(ctx, optionsOf(src))
			if err != nil {
				t.Fatal(err)
			}
			defer snap.Close()
			if _, err := io.ReadFull(snap, make([]byte, 1<<20)); err != nil {
				t.Fatal(err)
			}
			if err := c.Do(ctx, "CLIENT", "KILL", "TYPE", "replica").Err(); err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(io.Discard, snap)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("after the kill: %v, want an unexpected EOF", err)
			}
		})
	}
}

// TestStalledServer: a server that stops answering (SIGSTOP) fails the
// read within the read timeout.
func TestStalledServer(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t, "--repl-diskless-sync", "no", "--rdbcompression", "no")
	c := src.Client(t, 0)
	big := strings.Repeat("y", 1<<20)
	for i := range 32 {
		c.Set(ctx, fmt.Sprintf("big:%d", i), big, 0)
	}
	o := optionsOf(src)
	o.ReadTimeout = 300 * time.Millisecond
	snap, err := Fetch(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	if _, err := io.ReadFull(snap, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	src.Pause()
	defer src.Resume()
	start := time.Now()
	_, err = io.Copy(io.Discard, snap)
	if err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("a stalled server: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the stall was noticed after %s", d)
	}
}

// TestMarkReader: the EOF mark is found wherever the reads split it, the
// payload before it comes out whole, bytes after it are not read as
// payload, and an input that ends before the mark is an unexpected EOF.
func TestMarkReader(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	mark := []byte(strings.Repeat("ab12", 10))
	for round := range 300 {
		payload := make([]byte, rng.IntN(100_000))
		for i := range payload {
			payload[i] = byte(rng.IntN(256))
		}
		tail := []byte("*1\r\n$4\r\nPING\r\n")[:rng.IntN(15)]
		in := append(append(append([]byte{}, payload...), mark...), tail...)
		br := bufio.NewReaderSize(&chunky{b: in, rng: rng}, 64)
		got, err := io.ReadAll(&markReader{r: br, mark: mark})
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("round %d: %v, %d bytes of %d", round, err, len(got), len(payload))
		}
		// What follows the mark is left for the command stream.
		if rest, _ := io.ReadAll(br); !bytes.Equal(rest, tail) {
			t.Fatalf("round %d: after the mark %q, want %q", round, rest, tail)
		}
		// Cut anywhere before the mark is complete.
		cut := rng.IntN(len(payload) + len(mark))
		_, err = io.ReadAll(&markReader{r: bufio.NewReaderSize(&chunky{b: in[:cut], rng: rng}, 64), mark: mark})
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("round %d: cut at %d of %d: %v", round, cut, len(payload)+len(mark), err)
		}
	}
}

// TestLengthReader: exactly n bytes, then io.EOF; fewer is an unexpected EOF.
func TestLengthReader(t *testing.T) {
	got, err := io.ReadAll(&lengthReader{r: strings.NewReader("hello, world"), n: 5})
	if err != nil || string(got) != "hello" {
		t.Fatalf("%q %v", got, err)
	}
	_, err = io.ReadAll(&lengthReader{r: strings.NewReader("hel"), n: 5})
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short: %v", err)
	}
}

// chunky returns its bytes in reads of random sizes.
type chunky struct {
	b   []byte
	rng *rand.Rand
}

func (c *chunky) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), 1+c.rng.IntN(100), len(c.b))
	copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}
