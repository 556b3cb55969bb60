// Streams, both ways: the dump reads their entries in XRANGE windows and
// their metadata (XINFO STREAM and GROUPS, and the delivery state from XINFO
// STREAM FULL); the restore sets the last ID and recreates the groups,
// consumers and pending entries.

package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/codec"
)

// writeStream writes a stream: its metadata (XINFO STREAM, XINFO GROUPS),
// then its entries in XRANGE windows.
func (d *Dumper) writeStream(ctx context.Context, c *redis.Client, w KeyWriter, h codec.KeyHeader) (bool, int64, error) {
	meta, err := streamMeta(ctx, c, h.Key)
	if err != nil {
		if errors.Is(err, errVanished) {
			return false, 0, nil
		}
		return false, 0, err
	}
	h.Stream = meta
	if err := w.BeginKey(h); err != nil {
		return false, 0, err
	}
	var bytes int64
	start := []byte("-")
	for {
		raw, err := c.DoRaw(ctx, "XRANGE", h.Key, start, "+", "COUNT", d.opt.Window).Bytes()
		if err != nil {
			return false, 0, wrapRedis("XRANGE", err)
		}
		bytes += int64(len(raw))
		v, _, err := parseValue(raw, 0)
		if err != nil {
			return false, 0, wrapRedis("XRANGE", err)
		}
		entries, _ := v.([]any)
		var last []byte
		for _, e := range entries {
			pair, _ := e.([]any)
			if len(pair) != 2 {
				return false, 0, fmt.Errorf("XRANGE: unexpected entry shape")
			}
			id, _ := pair[0].([]byte)
			fv, _ := pair[1].([]any)
			se := codec.StreamEntry{ID: id, Fields: make([][]byte, len(fv))}
			for i, x := range fv {
				se.Fields[i], _ = x.([]byte)
			}
			if err := w.WriteStreamEntry(se); err != nil {
				return false, 0, err
			}
			last = id
		}
		if len(entries) < d.opt.Window || last == nil {
			break
		}
		var more bool
		start, more, err = nextStreamID(last)
		if err != nil {
			return false, 0, err
		}
		if !more {
			break // the last entry has the greatest possible ID
		}
	}
	return true, bytes, w.EndKey()
}

var errVanished = errors.New("key vanished")

func streamMeta(ctx context.Context, c *redis.Client, key []byte) (*codec.StreamMeta, error) {
	raw, err := c.DoRaw(ctx, "XINFO", "STREAM", key).Bytes()
	if err != nil {
		return nil, wrapRedis("XINFO STREAM", err)
	}
	v, _, err := parseValue(raw, 0)
	if err != nil {
		if errMessageIs(err, "no such key") || isWrongType(err) {
			return nil, errVanished
		}
		return nil, wrapRedis("XINFO STREAM", err)
	}
	info := pairs(v)
	m := &codec.StreamMeta{EntriesAdded: -1}
	m.LastID, _ = info["last-generated-id"].([]byte)
	if n, ok := info["entries-added"].([]byte); ok {
		m.EntriesAdded, _ = strconv.ParseInt(string(n), 10, 64)
	}
	if id, ok := info["max-deleted-entry-id"].([]byte); ok {
		m.MaxDeletedID = id
	}
	raw, err = c.DoRaw(ctx, "XINFO", "GROUPS", key).Bytes()
	if err != nil {
		return nil, wrapRedis("XINFO GROUPS", err)
	}
	gv, _, err := parseValue(raw, 0)
	if err != nil {
		return nil, wrapRedis("XINFO GROUPS", err)
	}
	groups, _ := gv.([]any)
	var maxPending int64
	for _, g := range groups {
		gi := pairs(g)
		sg := codec.StreamGroup{EntriesRead: -1}
		sg.Name, _ = gi["name"].([]byte)
		sg.LastDeliveredID, _ = gi["last-delivered-id"].([]byte)
		if n, ok := gi["entries-read"].([]byte); ok {
			sg.EntriesRead, _ = strconv.ParseInt(string(n), 10, 64)
		}
		if n, ok := gi["pending"].([]byte); ok {
			p, _ := strconv.ParseInt(string(n), 10, 64)
			maxPending = max(maxPending, p)
		}
		m.Groups = append(m.Groups, sg)
	}
	if len(m.Groups) > 0 {
		if err := deliveryState(ctx, c, key, m, maxPending); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// maxPendingEntries caps the pending entries of one group that a backup
// keeps (they are held in memory while the stream is written).
const maxPendingEntries = 1_000_000

// deliveryState reads the consumers and pending entries of every group of a
// stream with XINFO STREAM FULL, which gives their times exactly (seen and
// active times of consumers, delivery time and count of each pending
// entry). COUNT is raised to the largest pending list so that every entry
// comes back (the entries of the stream it also returns, up to COUNT, are
// dropped).
func deliveryState(ctx context.Context, c *redis.Client, key []byte, m *codec.StreamMeta, maxPending int64) error {
	if maxPending > maxPendingEntries {
		return fmt.Errorf("a consumer group has %d pending entries, more than a backup keeps (%d)", maxPending, maxPendingEntries)
	}
	raw, err := c.DoRaw(ctx, "XINFO", "STREAM", key, "FULL", "COUNT", max(1, maxPending)).Bytes()
	if err != nil {
		return wrapRedis("XINFO STREAM FULL", err)
	}
	v, _, err := parseValue(raw, 0)
	if err != nil {
		return wrapRedis("XINFO STREAM FULL", err)
	}
	full := pairs(v)
	groups, _ := full["groups"].([]any)
	byName := map[string]*codec.StreamGroup{}
	for i := range m.Groups {
		byName[string(m.Groups[i].Name)] = &m.Groups[i]
	}
	for _, g := range groups {
		gi := pairs(g)
		name, _ := gi["name"].([]byte)
		sg := byName[string(name)]
		if sg == nil {
			continue // created since XINFO GROUPS: the next backup has it
		}
		pel, _ := gi["pending"].([]any)
		for _, e := range pel {
			t, _ := e.([]any)
			if len(t) != 4 {
				return fmt.Errorf("XINFO STREAM FULL: unexpected pending entry shape")
			}
			p := codec.StreamPending{}
			p.ID, _ = t[0].([]byte)
			p.Consumer, _ = t[1].([]byte)
			p.DeliveryTime = intOf(t[2])
			p.DeliveryCount = intOf(t[3])
			sg.Pending = append(sg.Pending, p)
		}
		cons, _ := gi["consumers"].([]any)
		for _, cv := range cons {
			ci := pairs(cv)
			sc := codec.StreamConsumer{ActiveTime: -1}
			sc.Name, _ = ci["name"].([]byte)
			sc.SeenTime = intOf(ci["seen-time"])
			if a, ok := ci["active-time"]; ok {
				sc.ActiveTime = intOf(a)
			}
			sg.Consumers = append(sg.Consumers, sc)
		}
	}
	return nil
}

// intOf reads an integer reply as parseValue returns it (its text).
func intOf(v any) int64 {
	b, _ := v.([]byte)
	n, _ := strconv.ParseInt(string(b), 10, 64)
	return n
}

// pairs turns a flat [name, value, ...] reply into a map.
func pairs(v any) map[string]any {
	arr, _ := v.([]any)
	m := make(map[string]any, len(arr)/2)
	for i := 0; i+1 < len(arr); i += 2 {
		if k, ok := arr[i].([]byte); ok {
			m[string(k)] = arr[i+1]
		}
	}
	return m
}

// nextStreamID returns the smallest ID greater than id ("ms-seq"); more is
// false when id is the greatest ID there is.
func nextStreamID(id []byte) (next []byte, more bool, err error) {
	ms, seq, ok := strings.Cut(string(id), "-")
	if !ok {
		return nil, false, fmt.Errorf("bad stream ID %q", id)
	}
	msN, err1 := strconv.ParseUint(ms, 10, 64)
	seqN, err2 := strconv.ParseUint(seq, 10, 64)
	if err1 != nil || err2 != nil {
		return nil, false, fmt.Errorf("bad stream ID %q", id)
	}
	if seqN == ^uint64(0) {
		if msN == ^uint64(0) {
			return nil, false, nil
		}
		return []byte(strconv.FormatUint(msN+1, 10) + "-0"), true, nil
	}
	return []byte(ms + "-" + strconv.FormatUint(seqN+1, 10)), true, nil
}

// finishStream sets a stream's last ID and consumer groups on tmp. An empty
// stream is created first.
func (r *Restorer) finishStream(ctx context.Context, cl redis.UniversalClient, tmp []byte, c *codec.Chunk, hasEntries bool) error {
	m := c.Stream
	if m == nil {
		m = &codec.StreamMeta{EntriesAdded: -1}
	}
	if !hasEntries {
		// XADD with MAXLEN 0 creates the stream and leaves it empty.
		if err := cl.Do(ctx, "XADD", tmp, "MAXLEN", "0", "0-1", "redback", "empty").Err(); err != nil {
			return err
		}
		if err := cl.PExpire(ctx, string(tmp), tempSafetyTTL).Err(); err != nil {
			return err
		}
	}
	if len(m.LastID) > 0 {
		args := []any{"XSETID", tmp, m.LastID}
		if m.EntriesAdded >= 0 {
			args = append(args, "ENTRIESADDED", m.EntriesAdded)
			if len(m.MaxDeletedID) > 0 {
				args = append(args, "MAXDELETEDID", m.MaxDeletedID)
			}
		}
		err := cl.Do(ctx, args...).Err()
		if err != nil && m.EntriesAdded >= 0 && errMessageIs(err, "syntax error") {
			// Before Redis 7: no ENTRIESADDED.
			err = cl.Do(ctx, "XSETID", tmp, m.LastID).Err()
		}
		if err != nil {
			return err
		}
	}
	for _, g := range m.Groups {
		args := []any{"XGROUP", "CREATE", tmp, g.Name, g.LastDeliveredID}
		if g.EntriesRead >= 0 {
			args = append(args, "ENTRIESREAD", g.EntriesRead)
		}
		err := cl.Do(ctx, args...).Err()
		if err != nil && g.EntriesRead >= 0 && errMessageIs(err, "syntax error") {
			err = cl.Do(ctx, "XGROUP", "CREATE", tmp, g.Name, g.LastDeliveredID).Err()
		}
		if err != nil {
			return err
		}
		lost, err := r.restoreDelivery(ctx, cl, tmp, g)
		if err != nil {
			return err
		}
		if lost > 0 {
			r.warn(c.Key, fmt.Sprintf("%d pending entries of group %s refer to entries no longer in the stream and were not restored", lost, strconv.Quote(string(g.Name))))
			r.addStat(&r.st.PendingLost, lost)
		}
	}
	return nil
}

// restoreDelivery recreates a group's consumers and pending entries on the
// stream tmp: XGROUP CREATECONSUMER for each consumer, then XCLAIM ... TIME
// RETRYCOUNT FORCE JUSTID for each pending entry, which gives it its owner,
// delivery time and delivery count. It returns how many pending entries
// could not be restored (their stream entry was deleted: XCLAIM creates
// none for those). The consumers' seen and active times become the time of
// the restore: no command sets them.
func (r *Restorer) restoreDelivery(ctx context.Context, cl redis.UniversalClient, tmp []byte, g codec.StreamGroup) (int, error) {
	if len(g.Consumers) == 0 && len(g.Pending) == 0 {
		return 0, nil
	}
	const per = 1000
	lost := 0
	pipe := cl.Pipeline()
	var claims []*redis.Cmd
	exec := func() error {
		if pipe.Len() == 0 {
			return nil
		}
		_, err := pipe.Exec(ctx)
		if err != nil {
			return err
		}
		for _, cmd := range claims {
			if ids, _ := cmd.Val().([]any); len(ids) == 0 {
				lost++
			}
		}
		claims = claims[:0]
		return nil
	}
	for _, cons := range g.Consumers {
		pipe.Do(ctx, "XGROUP", "CREATECONSUMER", tmp, g.Name, cons.Name)
		if pipe.Len() >= per {
			if err := exec(); err != nil {
				return 0, err
			}
		}
	}
	for _, p := range g.Pending {
		claims = append(claims, pipe.Do(ctx, "XCLAIM", tmp, g.Name, p.Consumer, 0, p.ID,
			"TIME", p.DeliveryTime, "RETRYCOUNT", p.DeliveryCount, "FORCE", "JUSTID"))
		if pipe.Len() >= per {
			if err := exec(); err != nil {
				return 0, err
			}
		}
	}
	if err := exec(); err != nil {
		return 0, err
	}
	return lost, nil
}
