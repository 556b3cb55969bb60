// Package sinktest is the conformance suite that every sinks backend must
// pass: run it with RunConformance from a backend's tests.
package sinktest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redback-dev/redback/sinks"
	"github.com/redback-dev/redback/sinks/internal/testhook"
)

// LargeSize is above the S3 transfer manager's multipart threshold (16 MiB)
// and spans several 8 MiB parts.
const LargeSize = 17<<20 + 12345

// RunConformance runs every conformance test. open must return a new, empty
// sink for each call (each subtest calls it once) and arrange its cleanup
// with t.Cleanup.
func RunConformance(t *testing.T, open func(t *testing.T) *sinks.Sink) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s *sinks.Sink)
	}{
		{"WriteListReadStatDelete", testRoundTrip},
		{"AllNameForms", testNameForms},
		{"InvalidNames", testInvalidNames},
		{"EmptyArchive", testEmpty},
		{"CancelledWrite", testCancelled},
		{"CancelledWithoutCommit", testCancelledNoCommit},
		{"Abort", testAbort},
		{"InjectedFault", testFault},
		{"InjectedFaultLarge", testFaultLarge},
		{"ExistsRefused", testExists},
		{"ConcurrentCommit", func(t *testing.T, s *sinks.Sink) { testConcurrent(t, s, 100<<10) }},
		{"ConcurrentCommitLarge", func(t *testing.T, s *sinks.Sink) { testConcurrent(t, s, LargeSize) }},
		{"Large", testLarge},
		{"ForeignObjects", testForeign},
		{"ManifestRoundTrip", testManifest},
		{"BadManifestIgnored", testBadManifest},
		{"OpenRange", testRange},
		{"ListOrder", testOrder},
		{"Segments", testSegments},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			tc.fn(t, s)
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// data returns n deterministic pseudo-random bytes for seed.
func data(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// write stores an archive with content b (in uneven chunks) and commits it.
func write(t *testing.T, s *sinks.Sink, name string, b []byte, m sinks.Manifest) sinks.Manifest {
	t.Helper()
	ctx := ctxFor(t)
	w, err := s.Create(ctx, name)
	if err != nil {
		t.Fatalf("Create(%s): %v", name, err)
	}
	if err := writeChunks(w, b); err != nil {
		_ = w.Abort()
		t.Fatalf("Write(%s): %v", name, err)
	}
	got, err := w.Commit(m)
	if err != nil {
		t.Fatalf("Commit(%s): %v", name, err)
	}
	return got
}

func writeChunks(w io.Writer, b []byte) error {
	sizes := []int{1, 7, 4096, 65537, 1 << 20, 3<<20 + 5}
	for i := 0; len(b) > 0; i++ {
		n := min(sizes[i%len(sizes)], len(b))
		k, err := w.Write(b[:n])
		if err != nil {
			return err
		}
		if k != n {
			return fmt.Errorf("short write %d of %d", k, n)
		}
		b = b[n:]
	}
	return nil
}

func readAll(t *testing.T, s *sinks.Sink, name string) ([]byte, sinks.Info) {
	t.Helper()
	r, info, err := s.Open(ctxFor(t), name)
	if err != nil {
		t.Fatalf("Open(%s): %v", name, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return b, info
}

func names(infos []sinks.Info) []string {
	var out []string
	for _, i := range infos {
		out = append(out, i.Name)
	}
	return out
}

func list(t *testing.T, s *sinks.Sink) []sinks.Info {
	t.Helper()
	infos, err := s.List(ctxFor(t))
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return infos
}

// rawKeys returns every stored key, temporary files included.
func rawKeys(t *testing.T, s *sinks.Sink) []string {
	t.Helper()
	keys, err := testhook.RawKeys(ctxFor(t), s)
	if err != nil {
		t.Fatalf("raw list: %v", err)
	}
	return keys
}

func rawPut(t *testing.T, s *sinks.Sink, key string, b []byte) {
	t.Helper()
	if err := testhook.RawPut(ctxFor(t), s, key, b); err != nil {
		t.Fatalf("raw put %q: %v", key, err)
	}
}

// expectEmpty fails unless nothing at all is stored (polling briefly, for
// clean-up done by a cancellation hook).
func expectEmpty(t *testing.T, s *sinks.Sink) {
	t.Helper()
	if got := list(t, s); len(got) != 0 {
		t.Fatalf("List = %v, want nothing", names(got))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		keys := rawKeys(t, s)
		if len(keys) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored keys = %q, want none", keys)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testRoundTrip(t *testing.T, s *sinks.Sink) {
	ctx := ctxFor(t)
	name := "redis_backup_20231205_143022.json.gz"
	b := data(1, 300<<10)
	before := time.Now().UTC().Add(-time.Second)
	m := write(t, s, name, b, sinks.Manifest{KeysCount: 42, FormatVersion: 2, Source: map[string]string{"redis_version": "7.2.4"}})
	if m.Name != name || m.Size != int64(len(b)) || m.SHA256 != sum(b) {
		t.Fatalf("manifest = %+v", m)
	}
	if !m.Compressed || m.Encrypted || m.KeysCount != 42 || m.FormatVersion != 2 || m.Source["redis_version"] != "7.2.4" {
		t.Fatalf("manifest fields = %+v", m)
	}
	if !m.CreatedAt.Equal(time.Date(2023, 12, 5, 14, 30, 22, 0, time.UTC)) {
		t.Fatalf("CreatedAt = %v", m.CreatedAt)
	}
	if m.CompletedAt.Before(before) || m.CompletedAt.Location() != time.UTC {
		t.Fatalf("CompletedAt = %v", m.CompletedAt)
	}

	infos := list(t, s)
	if len(infos) != 1 || infos[0].Name != name || infos[0].Size != int64(len(b)) || !infos[0].Compressed || infos[0].Encrypted {
		t.Fatalf("List = %+v", infos)
	}
	if infos[0].Manifest == nil || infos[0].Manifest.SHA256 != sum(b) {
		t.Fatalf("listed manifest = %+v", infos[0].Manifest)
	}
	if infos[0].ModTime.IsZero() {
		t.Errorf("ModTime is zero")
	}

	st, err := s.Stat(ctx, name)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if st.Size != int64(len(b)) || st.Manifest == nil || st.Manifest.KeysCount != 42 {
		t.Fatalf("Stat = %+v", st)
	}

	got, info := readAll(t, s, name)
	if !bytes.Equal(got, b) {
		t.Fatalf("read back %d bytes, differ from the %d written", len(got), len(b))
	}
	if info.Name != name || info.Size != int64(len(b)) {
		t.Fatalf("Open info = %+v", info)
	}

	if err := s.Delete(ctx, name); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Stat(ctx, name); !errors.Is(err, sinks.ErrNotFound) {
		t.Fatalf("Stat after Delete: %v, want ErrNotFound", err)
	}
	if _, _, err := s.Open(ctx, name); !errors.Is(err, sinks.ErrNotFound) {
		t.Fatalf("Open after Delete: %v, want ErrNotFound", err)
	}
	if _, err := s.OpenRange(ctx, name, 0, -1); !errors.Is(err, sinks.ErrNotFound) {
		t.Fatalf("OpenRange after Delete: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, name); !errors.Is(err, sinks.ErrNotFound) {
		t.Fatalf("second Delete: %v, want ErrNotFound", err)
	}
	expectEmpty(t, s)
}

func testNameForms(t *testing.T, s *sinks.Sink) {
	// Between them these use every character an archive name may contain.
	want := []string{
		"redis_backup_20180917_234656.json",
		"redis_backup_20200229_000000.json.gz",
		"redis_backup_20231231_235959.json.age",
		"redis_backup_20240101_010203.json.gz.age",
	}
	for i, n := range want {
		write(t, s, n, data(uint64(i), 10+i), sinks.Manifest{})
	}
	infos := list(t, s)
	if !slices.Equal(names(infos), want) {
		t.Fatalf("List = %q, want %q", names(infos), want)
	}
	for _, in := range infos {
		ni, err := sinks.ParseName(in.Name)
		if err != nil {
			t.Fatal(err)
		}
		if in.Compressed != ni.Compressed || in.Encrypted != ni.Encrypted || !in.Created.Equal(ni.Time) {
			t.Errorf("%s: info %+v, name says %+v", in.Name, in, ni)
		}
	}
}

// HostileNames are refused by every method before storage is touched.
var HostileNames = []string{
	"",
	"../x",
	"../redis_backup_20231205_143022.json",
	"redis_backup_20231205_143022.json/",
	"redis_backup_20231205_143022.json/../../etc/passwd",
	"./redis_backup_20231205_143022.json",
	"/redis_backup_20231205_143022.json",
	"sub/redis_backup_20231205_143022.json",
	"%2e%2e%2f",
	"%2e%2e%2fredis_backup_20231205_143022.json",
	"redis_backup_20231205_143022%2ejson",
	"..\\redis_backup_20231205_143022.json",
	"redis_backup_20231205_143022.json\\",
	"redis_backup_20231205_143022.json\x00",
	"redis_backup_20231205_143022\x00.json",
	"redis_backup_20231205_143022.json\n",
	" redis_backup_20231205_143022.json",
	"redis_backup_20231205_143022.json ",
	"redis_backup_２0231205_143022.json",
	"redis_backup_20231205_14302٢.json",
	"redis_backup_20231205_143022.JSON",
	"REDIS_BACKUP_20231205_143022.json",
	"redis_backup_20231205_143022.json.gz.gz",
	"redis_backup_20231205_143022.json.age.gz",
	"redis_backup_20231205_143022.json.tmp",
	"redis_backup_20231205_143022.json.gz.17a2b3c4d5.tmp",
	"redis_backup_20231205_143022.txt",
	"redis_backup_x.txt",
	"redis_backup_2023125_143022.json",
	"redis_backup_202312051_43022.json",
	"redis_backup_20231305_143022.json",
	"redis_backup_20230230_143022.json",
	"redis_backup_20231205_243022.json",
	"redis_backup_20231205_146022.json",
	"redis_backup_20231205_143060.json",
	"redis_backup_00000000_000000.json",
	".redback/redis_backup_20231205_143022.json.json",
	"redis_backup_20231205_143022.json" + strings.Repeat("x", 5000),
	strings.Repeat("a", 100000),
	"\xff\xfeinvalid utf8",
}

func testInvalidNames(t *testing.T, s *sinks.Sink) {
	ctx := ctxFor(t)
	for _, n := range HostileNames {
		check := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, sinks.ErrInvalidName) {
				t.Errorf("%s(%q): %v, want ErrInvalidName", what, truncate(n), err)
				return
			}
			msg := err.Error()
			if strings.ContainsAny(msg, "\x00\n") || len(msg) > 200 {
				t.Errorf("%s(%q): unsafe message %q", what, truncate(n), truncate(msg))
			}
		}
		check("ValidateName", sinks.ValidateName(n))
		_, err := sinks.ParseName(n)
		check("ParseName", err)
		w, err := s.Create(ctx, n)
		if w != nil {
			_ = w.Abort()
		}
		check("Create", err)
		_, _, err = s.Open(ctx, n)
		check("Open", err)
		_, err = s.OpenRange(ctx, n, 0, 1)
		check("OpenRange", err)
		_, err = s.Stat(ctx, n)
		check("Stat", err)
		check("Delete", s.Delete(ctx, n))
		check("WriteManifest", s.WriteManifest(ctx, sinks.Manifest{Name: n}))
	}
	expectEmpty(t, s)
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func testEmpty(t *testing.T, s *sinks.Sink) {
	name := "redis_backup_20231205_143022.json"
	m := write(t, s, name, nil, sinks.Manifest{})
	if m.Size != 0 || m.SHA256 != sum(nil) {
		t.Fatalf("manifest = %+v", m)
	}
	got, info := readAll(t, s, name)
	if len(got) != 0 || info.Size != 0 {
		t.Fatalf("read %d bytes, info %+v", len(got), info)
	}
}

func testCancelled(t *testing.T, s *sinks.Sink) {
	ctx, cancel := context.WithCancel(ctxFor(t))
	name := "redis_backup_20231205_143022.json.gz"
	w, err := s.Create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeChunks(w, data(2, 1<<20)); err != nil {
		t.Fatal(err)
	}
	cancel()
	// Writes after cancellation fail (perhaps not the first buffered one).
	var werr error
	for i := 0; i < 50 && werr == nil; i++ {
		_, werr = w.Write(data(3, 64<<10))
	}
	if werr == nil {
		t.Errorf("Write after cancel succeeded")
	}
	if _, err := w.Commit(sinks.Manifest{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit after cancel: %v, want context.Canceled", err)
	}
	_ = w.Abort()
	expectEmpty(t, s)
	if _, err := s.Stat(ctxFor(t), name); !errors.Is(err, sinks.ErrNotFound) {
		t.Fatalf("Stat: %v", err)
	}
}

func testCancelledNoCommit(t *testing.T, s *sinks.Sink) {
	ctx, cancel := context.WithCancel(ctxFor(t))
	w, err := s.Create(ctx, "redis_backup_20231205_143022.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := writeChunks(w, data(4, 200<<10)); err != nil {
		t.Fatal(err)
	}
	cancel() // the Writer is never committed nor aborted
	expectEmpty(t, s)
	_ = w.Abort()
}

func testAbort(t *testing.T, s *sinks.Sink) {
	ctx := ctxFor(t)
	name := "redis_backup_20231205_143022.json"
	w, err := s.Create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeChunks(w, data(5, 500<<10)); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("second Abort: %v", err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatalf("Write after Abort succeeded")
	}
	if _, err := w.Commit(sinks.Manifest{}); err == nil {
		t.Fatalf("Commit after Abort succeeded")
	}
	expectEmpty(t, s)
	// An aborted name can be written afterwards.
	write(t, s, name, []byte("{}"), sinks.Manifest{})
	if got := names(list(t, s)); !slices.Equal(got, []string{name}) {
		t.Fatalf("List = %q", got)
	}
	// Abort right after Create, without any Write.
	w, err = s.Create(ctx, "redis_backup_20231205_143023.json")
	if err != nil {
		t.Fatal(err)
	}
	_ = w.Abort()
	if got := names(list(t, s)); !slices.Equal(got, []string{name}) {
		t.Fatalf("List = %q", got)
	}
}

// faultyReader yields n bytes of data and then fails.
type faultyReader struct {
	b []byte
}

var errInjected = errors.New("injected fault")

func (r *faultyReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, errInjected
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func faultRun(t *testing.T, s *sinks.Sink, n int) {
	ctx := ctxFor(t)
	w, err := s.Create(ctx, "redis_backup_20231205_143022.json.gz.age")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(w, &faultyReader{b: data(6, n)})
	if !errors.Is(err, errInjected) {
		t.Fatalf("copy: %v, want the injected fault", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	expectEmpty(t, s)
}

func testFault(t *testing.T, s *sinks.Sink) { faultRun(t, s, 3<<20+17) }

func testFaultLarge(t *testing.T, s *sinks.Sink) { faultRun(t, s, LargeSize+(8<<20)) }

func testExists(t *testing.T, s *sinks.Sink) {
	ctx := ctxFor(t)
	name := "redis_backup_20231205_143022.json"
	b := data(7, 1000)
	write(t, s, name, b, sinks.Manifest{})
	w, err := s.Create(ctx, name)
	if !errors.Is(err, sinks.ErrExists) {
		if w != nil {
			_ = w.Abort()
		}
		t.Fatalf("Create on existing: %v, want ErrExists", err)
	}
	got, _ := readAll(t, s, name)
	if !bytes.Equal(got, b) {
		t.Fatalf("archive changed")
	}
}

func testConcurrent(t *testing.T, s *sinks.Sink, size int) {
	ctx := ctxFor(t)
	name := "redis_backup_20231205_143022.json.gz"
	contents := [][]byte{data(8, size), data(9, size+1)}
	ws := make([]*sinks.Writer, 2)
	for i := range ws {
		w, err := s.Create(ctx, name)
		if err != nil {
			t.Fatalf("Create %d: %v", i, err)
		}
		ws[i] = w
	}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := writeChunks(ws[i], contents[i]); err != nil {
				errs[i] = err
				_ = ws[i].Abort()
				return
			}
			_, errs[i] = ws[i].Commit(sinks.Manifest{KeysCount: int64(i)})
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("both commits succeeded")
			}
			winner = i
		case errors.Is(err, sinks.ErrExists):
		default:
			t.Fatalf("commit %d: %v, want nil or ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no commit succeeded: %v", errs)
	}
	got, info := readAll(t, s, name)
	if !bytes.Equal(got, contents[winner]) {
		t.Fatalf("stored content is not the winner's")
	}
	if info.Manifest == nil || info.Manifest.SHA256 != sum(contents[winner]) || info.Manifest.KeysCount != int64(winner) {
		t.Fatalf("manifest = %+v, want the winner's", info.Manifest)
	}
	if got := names(list(t, s)); !slices.Equal(got, []string{name}) {
		t.Fatalf("List = %q", got)
	}
	if keys := rawKeys(t, s); len(keys) != 2 {
		t.Fatalf("stored keys = %q, want the archive and its manifest", keys)
	}
}

func testLarge(t *testing.T, s *sinks.Sink) {
	name := "redis_backup_20231205_143022.json.gz"
	b := data(10, LargeSize)
	m := write(t, s, name, b, sinks.Manifest{})
	if m.Size != int64(len(b)) || m.SHA256 != sum(b) {
		t.Fatalf("manifest = %+v", m)
	}
	got, _ := readAll(t, s, name)
	if sum(got) != sum(b) {
		t.Fatalf("read back differs (%d bytes)", len(got))
	}
	r, err := s.OpenRange(ctxFor(t), name, 8<<20-100, 200)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	part, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(part, b[8<<20-100:8<<20+100]) {
		t.Fatalf("range across a part boundary: %v", err)
	}
}

func testForeign(t *testing.T, s *sinks.Sink) {
	foreign := []string{
		"redis_backup_x.txt",
		"notes.txt",
		"redis_backup_20230101_000000.JSON",
		"redis_backup_20230101_000000.json.tmp",
		"redis_backup_20230101_000000.json.gz.17a2b3c4d5e6f.tmp",
		"redis_backup_20230230_000000.json",
		"sub/redis_backup_20230101_000000.json",
		"sub/deeper/notes.txt",
		".redback/notes.json",
		".redback/redis_backup_20230102_000000.json.json", // manifest without archive
		".hidden",
	}
	for _, k := range foreign {
		rawPut(t, s, k, []byte("not an archive"))
	}
	// An archive copied in by hand: no manifest.
	hand := "redis_backup_20220101_000000.json"
	rawPut(t, s, hand, []byte(`{"timestamp":"x","data":{}}`))
	ours := "redis_backup_20230101_000000.json.gz"
	write(t, s, ours, []byte("gz"), sinks.Manifest{})

	infos := list(t, s)
	if got := names(infos); !slices.Equal(got, []string{hand, ours}) {
		t.Fatalf("List = %q, want %q", got, []string{hand, ours})
	}
	if infos[0].Manifest != nil || !infos[0].Created.Equal(time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("hand-copied archive info = %+v", infos[0])
	}
	if infos[1].Manifest == nil {
		t.Fatalf("our archive lost its manifest")
	}
	got, info := readAll(t, s, hand)
	if string(got) != `{"timestamp":"x","data":{}}` || info.Manifest != nil {
		t.Fatalf("hand-copied archive read = %q, %+v", got, info)
	}
	if err := s.Delete(ctxFor(t), hand); err != nil {
		t.Fatalf("Delete hand-copied: %v", err)
	}
	if got := names(list(t, s)); !slices.Equal(got, []string{ours}) {
		t.Fatalf("List after delete = %q", got)
	}
}

func testManifest(t *testing.T, s *sinks.Sink) {
	ctx := ctxFor(t)
	name := "redis_backup_20231205_143022.json.gz.age"
	created := time.Date(2023, 12, 5, 14, 30, 22, 123456789, time.UTC)
	completed := time.Date(2023, 12, 5, 14, 31, 0, 5000000, time.UTC)
	b := data(11, 4321)
	in := sinks.Manifest{
		Name:          "ignored",
		Size:          -1,
		SHA256:        "ignored",
		KeysCount:     1 << 60,
		FormatVersion: 3,
		Compressed:    false, // set from the name
		Recipients:    []string{"age1fingerprint", "age1other"},
		CreatedAt:     created,
		CompletedAt:   completed,
		Source:        map[string]string{"addr": "redis:6379", "db": "0,1"},
	}
	m := write(t, s, name, b, in)
	want := in
	want.Name, want.Size, want.SHA256 = name, int64(len(b)), sum(b)
	want.Compressed, want.Encrypted = true, true
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("Commit manifest = %+v\nwant %+v", m, want)
	}
	st, err := s.Stat(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if st.Manifest == nil || !reflect.DeepEqual(*st.Manifest, want) {
		t.Fatalf("stored manifest = %+v\nwant %+v", st.Manifest, want)
	}
	if !st.Created.Equal(created) {
		t.Fatalf("Created = %v, want the manifest's %v", st.Created, created)
	}

	verified := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	want.VerifiedAt = &verified
	if err := s.WriteManifest(ctx, want); err != nil {
		t.Fatalf("WriteManifest: %v", err)
	}
	infos := list(t, s)
	if len(infos) != 1 || infos[0].Manifest == nil || !reflect.DeepEqual(*infos[0].Manifest, want) {
		t.Fatalf("listed after WriteManifest = %+v", infos)
	}

	bad := want
	bad.Size++
	if err := s.WriteManifest(ctx, bad); err == nil {
		t.Fatalf("WriteManifest with a wrong size succeeded")
	}
	missing := want
	missing.Name = "redis_backup_20231205_143023.json"
	if err := s.WriteManifest(ctx, missing); !errors.Is(err, sinks.ErrNotFound) {
		t.Fatalf("WriteManifest of a missing archive: %v, want ErrNotFound", err)
	}
	if got := names(list(t, s)); !slices.Equal(got, []string{name}) {
		t.Fatalf("List = %q", got)
	}
}

func testBadManifest(t *testing.T, s *sinks.Sink) {
	ctx := ctxFor(t)
	a := "redis_backup_20231205_143022.json"
	b := "redis_backup_20231205_143023.json"
	write(t, s, a, []byte("a"), sinks.Manifest{})
	write(t, s, b, []byte("b"), sinks.Manifest{})
	rawPut(t, s, ".redback/"+a+".json", []byte("{not json"))
	rawPut(t, s, ".redback/"+b+".json", []byte(`{"name":"redis_backup_20231205_143022.json","size":1}`))
	infos := list(t, s)
	if got := names(infos); !slices.Equal(got, []string{a, b}) {
		t.Fatalf("List = %q", got)
	}
	for _, in := range infos {
		if in.Manifest != nil {
			t.Errorf("%s: bad manifest accepted: %+v", in.Name, in.Manifest)
		}
	}
	if st, err := s.Stat(ctx, a); err != nil || st.Manifest != nil {
		t.Fatalf("Stat = %+v, %v", st, err)
	}
	// WriteManifest repairs it.
	if err := s.WriteManifest(ctx, sinks.Manifest{Name: a, Size: 1, KeysCount: 9}); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Stat(ctx, a); err != nil || st.Manifest == nil || st.Manifest.KeysCount != 9 {
		t.Fatalf("Stat after repair = %+v, %v", st, err)
	}
}

func testRange(t *testing.T, s *sinks.Sink) {
	ctx := ctxFor(t)
	name := "redis_backup_20231205_143022.json"
	b := data(12, 1000)
	write(t, s, name, b, sinks.Manifest{})
	cases := []struct {
		off, n int64
		want   []byte
	}{
		{0, -1, b},
		{0, 1000, b},
		{0, 5000, b},
		{5, 10, b[5:15]},
		{997, -1, b[997:]},
		{997, 10, b[997:]},
		{999, 1, b[999:]},
		{1000, -1, nil},
		{1000, 5, nil},
		{5000, 5, nil},
		{10, 0, nil},
	}
	for _, c := range cases {
		r, err := s.OpenRange(ctx, name, c.off, c.n)
		if err != nil {
			t.Fatalf("OpenRange(%d, %d): %v", c.off, c.n, err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, c.want) {
			t.Fatalf("OpenRange(%d, %d) = %d bytes, %v; want %d bytes", c.off, c.n, len(got), err, len(c.want))
		}
	}
	for _, c := range [][2]int64{{-1, 5}, {0, -2}} {
		if r, err := s.OpenRange(ctx, name, c[0], c[1]); err == nil {
			r.Close()
			t.Fatalf("OpenRange(%d, %d) succeeded", c[0], c[1])
		}
	}
}

func testOrder(t *testing.T, s *sinks.Sink) {
	// Written out of order; one manifest moves its archive by CreatedAt.
	write(t, s, "redis_backup_20231205_143022.json.gz", []byte("2"), sinks.Manifest{})
	write(t, s, "redis_backup_20200101_000000.json", []byte("1"), sinks.Manifest{})
	write(t, s, "redis_backup_20250101_000000.json.age", []byte("4"), sinks.Manifest{})
	write(t, s, "redis_backup_20100101_000000.json", []byte("3"),
		sinks.Manifest{CreatedAt: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)})
	want := []string{
		"redis_backup_20200101_000000.json",
		"redis_backup_20231205_143022.json.gz",
		"redis_backup_20100101_000000.json",
		"redis_backup_20250101_000000.json.age",
	}
	if got := names(list(t, s)); !slices.Equal(got, want) {
		t.Fatalf("List = %q, want %q", got, want)
	}
}
