package glob

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/internal/redistest"
)

// alphabet holds the glob specials, their neighbours and binary bytes
// (0x00, 0x7f, 0x80, 0xff: the signed-char boundary of ranges).
var alphabet = []byte{'a', 'b', 'c', 'x', '*', '?', '[', ']', '^', '-', '\\', 0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, ':'}

func randBytes(r *rand.Rand, max int) []byte {
	n := r.Intn(max + 1)
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.Intn(len(alphabet))]
	}
	return b
}

// TestMatchAgainstServers: on every server of the matrix, the keys that
// KEYS and SCAN MATCH return for random patterns are exactly those Match
// selects.
func TestMatchAgainstServers(t *testing.T) {
	for _, name := range redistest.Matrix {
		t.Run(name, func(t *testing.T) {
			srv := redistest.StartServer(t, name)
			c := srv.Client(t, 0)
			ctx := context.Background()
			r := rand.New(rand.NewSource(15))
			keys := map[string]bool{}
			for len(keys) < 400 {
				keys[string(randBytes(r, 6))] = true
			}
			pipe := c.Pipeline()
			for k := range keys {
				pipe.Set(ctx, k, "v", 0)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				t.Fatal(err)
			}
			checked := 0
			for i := 0; i < 1500; i++ {
				p := randBytes(r, 7)
				want, err := c.Keys(ctx, string(p)).Result()
				if err != nil {
					t.Fatalf("KEYS %q: %v", p, err)
				}
				var got []string
				for k := range keys {
					if Match(p, []byte(k)) {
						got = append(got, k)
					}
				}
				sort.Strings(want)
				sort.Strings(got)
				if !slices.Equal(got, want) {
					t.Fatalf("pattern %q: Match selects %d keys, KEYS %d; only Match: %q; only KEYS: %q", p, len(got), len(want), minus(got, want), minus(want, got))
				}
				checked += len(want)
				if i%50 == 0 && len(p) > 0 { // (go-redis sends no MATCH for "")
					sc := scanMatch(t, c, p)
					if !slices.Equal(sc, want) {
						t.Fatalf("pattern %q: SCAN MATCH %d keys, KEYS %d; only SCAN: %q", p, len(sc), len(want), minus(sc, want))
					}
				}
			}
			// The server gives up past 1000 nested stars; so does Match.
			for _, n := range []int{900, 1000, 1001, 1002, 1100} {
				key := strings.Repeat("a", n+1)
				p := strings.Repeat("a*", n)
				if err := c.Set(ctx, key, "v", 0).Err(); err != nil {
					t.Fatal(err)
				}
				got, err := c.Keys(ctx, p).Result()
				if err != nil {
					t.Fatal(err)
				}
				if server, mine := len(got) == 1, Match([]byte(p), []byte(key)); server != mine {
					t.Fatalf("%d stars: the server matches %v, Match %v", n, server, mine)
				}
				c.Del(ctx, key)
			}
			if checked < 1500 {
				t.Fatalf("the random patterns matched only %d keys in all: the test proves little", checked)
			}
		})
	}
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func scanMatch(t *testing.T, c *redis.Client, p []byte) []string {
	t.Helper()
	var out []string
	var cursor uint64
	for {
		ks, next, err := c.Scan(context.Background(), cursor, string(p), 1000).Result()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ks...)
		if cursor = next; cursor == 0 {
			break
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func TestMatchTable(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"*", "", true},
		{"", "", true},
		{"", "a", false},
		{"**", "", false},
		{"a*", "", false},
		{"user:42:*", "user:42:name", true},
		{"user:42:*", "user:420:name", false},
		{"h?llo", "hello", true},
		{"h[ae]llo", "hallo", true},
		{"h[^e]llo", "hello", false},
		{"h[a-b]llo", "hbllo", true},
		{"h[b-a]llo", "hbllo", true},
		{`h\*llo`, "h*llo", true},
		{`h\*llo`, "hello", false},
		{"[a-]", "]", true},
		{"a[", "a[", false},
		{"a[^", "ab", true},
		{"\x01-\xff", "\x01-\xff", true},
		{"[\x01-\xff]", "\xff", true},
		{"[\x01-\xff]", "\x80", false},
	} {
		if got := Match([]byte(tc.p), []byte(tc.s)); got != tc.want {
			t.Errorf("Match(%q, %q) = %v", tc.p, tc.s, got)
		}
	}
}

func TestQuoteUnquote(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for i := 0; i < 5000; i++ {
		b := randBytes(r, 10)
		if i%7 == 0 {
			b = append(b, "é用户\t"...)
		}
		q := Quote(b)
		if strings.ContainsAny(q, "\x00\x01\x7f\t") {
			t.Fatalf("Quote(%q) = %q holds a control byte", b, q)
		}
		u, err := Unquote(q)
		if err != nil || !bytes.Equal(u, b) {
			t.Fatalf("Unquote(Quote(%q)) = %q, %v", b, u, err)
		}
		// A quoted key, its glob specials escaped, is a pattern that
		// selects exactly that key.
		p := Parse(escapeSpecials(q))
		if !p.Match(b) {
			t.Fatalf("pattern %q (from %q) does not match %q", p.Raw(), q, b)
		}
	}
	if got := Quote([]byte("user:1\\x\xff\x00é")); got != `user:1\\x\xff\x00é` {
		t.Fatalf("Quote: %s", got)
	}
	for _, bad := range []string{`a\`, `\x`, `\xg0`, `\x1`} {
		if _, err := Unquote(bad); err == nil {
			t.Errorf("Unquote(%q) accepted", bad)
		}
	}
	if got := Parse(`a\x2a\*\xzz`).Raw(); string(got) != "a\\*\\*\\xzz" {
		t.Fatalf("Parse: %q", got)
	}
}

func escapeSpecials(q string) string {
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case '*', '?', '[', ']':
			b.WriteByte('\\')
		case '\\':
			// \\ and \xHH pass as they are.
			b.WriteString(q[i : i+2])
			i++
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// TestPatternString: a pattern written by String and read by Parse
// matches what the pattern matched.
func TestPatternString(t *testing.T) {
	r := rand.New(rand.NewSource(9))
	keys := make([][]byte, 300)
	for i := range keys {
		keys[i] = randBytes(r, 6)
	}
	for i := 0; i < 3000; i++ {
		p := New(randBytes(r, 7))
		q := Parse(p.String())
		for _, k := range keys {
			if p.Match(k) != q.Match(k) {
				t.Fatalf("pattern %q, written %q, read back %q: they differ on %q", p.Raw(), p.String(), q.Raw(), k)
			}
		}
	}
	if got := Parse(`[\x01-\x1f]`).Raw(); string(got) != "[\x01-\x1f]" {
		t.Fatalf("a binary range: %q", got)
	}
}

func TestSet(t *testing.T) {
	s := ParseSet([]string{"user:*", "order:*"}, []string{"user:42:*"})
	for k, want := range map[string]bool{"user:1": true, "order:9": true, "user:42:a": false, "cache:1": false} {
		if s.Selects([]byte(k)) != want {
			t.Errorf("%s: want %v", k, want)
		}
	}
	if !(Set{}).Selects([]byte("x")) || !(Set{}).Empty() {
		t.Fatal("the empty set selects everything")
	}
	_ = fmt.Sprint
}
