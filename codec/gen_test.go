package codec

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// genKey is one key of generated test data, in the Writer's terms.
type genKey struct {
	h       KeyHeader
	str     []byte   // string value or raw payload
	items   [][]byte // list/set items; hash field,value,...; zset member,score,...
	fexp    []int64  // hash with h.FieldTTLs: expiry of each pair (0: none)
	entries []StreamEntry
	parts   int // > 0: write str with WriteStringPart in parts of this size
}

// realistic returns keys that look like a bot's Redis: small strings,
// small hashes, lists, zsets, sets, and some random binary values.
func realistic(rng *rand.Rand, n int) []genKey {
	words := []string{"user", "chat", "queue", "match", "ban", "report", "session", "profile", "activity", "warn"}
	names := []string{"John", "Maria", "Ahmed", "Li", "Sofia", "Дмитрий", "José", "Anna", "Kenji", "Olu"}
	keys := make([]genKey, 0, n)
	for i := 0; i < n; i++ {
		w := words[rng.IntN(len(words))]
		id := strconv.Itoa(100000 + rng.IntN(900000))
		k := genKey{h: KeyHeader{Key: []byte(w + ":" + id)}}
		if rng.IntN(4) == 0 {
			k.h.PTTL = int64(1000 + rng.IntN(86400000))
			k.h.ExpireAt = 1701786681535 + k.h.PTTL
		}
		switch r := rng.IntN(20); {
		case r < 7:
			k.h.Type = TypeString
			if rng.IntN(10) == 0 {
				b := make([]byte, 16+rng.IntN(200))
				for j := range b {
					b[j] = byte(rng.Uint32())
				}
				k.str = b
			} else {
				k.str = []byte(fmt.Sprintf(`{"id":%s,"name":"%s","lang":"en","score":%d,"premium":%v}`, id, names[rng.IntN(len(names))], rng.IntN(1000), rng.IntN(2) == 0))
			}
		case r < 12:
			k.h.Type = TypeHash
			nf := 3 + rng.IntN(10)
			for j := 0; j < nf; j++ {
				k.items = append(k.items, []byte(fmt.Sprintf("field_%d", j)), []byte(fmt.Sprintf("%s %d", names[rng.IntN(len(names))], rng.IntN(100000))))
			}
		case r < 15:
			k.h.Type = TypeList
			nf := 1 + rng.IntN(30)
			for j := 0; j < nf; j++ {
				k.items = append(k.items, []byte(strconv.Itoa(100000+rng.IntN(900000))))
			}
		case r < 17:
			k.h.Type = TypeSet
			nf := 1 + rng.IntN(20)
			for j := 0; j < nf; j++ {
				k.items = append(k.items, []byte(strconv.Itoa(100000+rng.IntN(900000))))
			}
		default:
			k.h.Type = TypeZSet
			nf := 1 + rng.IntN(20)
			for j := 0; j < nf; j++ {
				k.items = append(k.items, []byte(strconv.Itoa(100000+rng.IntN(900000))), []byte(strconv.FormatFloat(float64(rng.IntN(100000))/7, 'g', 17, 64)))
			}
		}
		keys = append(keys, k)
	}
	return keys
}

// keyWriter is what writeKey needs: *Writer and *ArchiveWriter have it.
type keyWriter interface {
	BeginKey(h KeyHeader) error
	WriteString(v []byte) error
	WriteStringPart(p []byte) error
	WriteField(field, value []byte) error
	WriteFieldExpire(field, value []byte, expireAt int64) error
	WriteItem(v []byte) error
	WriteMember(member, score []byte) error
	WriteStreamEntry(e StreamEntry) error
	EndKey() error
}

// writeKeys writes keys with w; keys must be in ascending DB order.
func writeKeys(tb testing.TB, w keyWriter, keys []genKey) {
	tb.Helper()
	for _, k := range keys {
		if err := writeKey(w, k); err != nil {
			tb.Fatal(err)
		}
	}
}

func writeKey(w keyWriter, k genKey) error {
	if err := w.BeginKey(k.h); err != nil {
		return err
	}
	var err error
	switch k.h.Type {
	case TypeString, TypeRaw:
		if k.parts <= 0 {
			err = w.WriteString(k.str)
			break
		}
		for p := k.str; len(p) > 0 && err == nil; {
			n := min(len(p), k.parts)
			err = w.WriteStringPart(p[:n])
			p = p[n:]
		}
	case TypeHash:
		for j := 0; j+1 < len(k.items) && err == nil; j += 2 {
			if k.h.FieldTTLs && (k.fexp[j/2] != 0 || j%4 == 0) {
				// WriteFieldExpire with 0 and WriteField must be the same.
				err = w.WriteFieldExpire(k.items[j], k.items[j+1], k.fexp[j/2])
			} else {
				err = w.WriteField(k.items[j], k.items[j+1])
			}
		}
	case TypeList, TypeSet:
		for j := 0; j < len(k.items) && err == nil; j++ {
			err = w.WriteItem(k.items[j])
		}
	case TypeZSet:
		for j := 0; j+1 < len(k.items) && err == nil; j += 2 {
			err = w.WriteMember(k.items[j], k.items[j+1])
		}
	case TypeStream:
		for j := 0; j < len(k.entries) && err == nil; j++ {
			err = w.WriteStreamEntry(k.entries[j])
		}
	}
	if err != nil {
		return err
	}
	return w.EndKey()
}

// realisticArchive returns about size bytes of archive JSON.
func realisticArchive(tb testing.TB, size int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	buf.Grow(size + 1<<20)
	w := NewWriter(&buf, Header{})
	for w.BytesWritten() < int64(size) {
		writeKeys(tb, w, realistic(rng, 1000))
	}
	if _, err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

var fixedTime = time.Date(2023, 12, 5, 14, 30, 22, 123456000, time.UTC)
