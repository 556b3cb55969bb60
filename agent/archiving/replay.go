package archiving

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/sinks"
)

// ReplayResult says how far a replay went.
type ReplayResult struct {
	// Segments read and commands applied (PING and REPLCONF of the stream
	// are not counted, nor sent).
	Segments int
	Commands int64
	// Reached is the receive time of the last command applied (the base's
	// time when none was) and Offset the offset of its last byte.
	Reached time.Time
	Offset  int64
	// Errors counts the commands the target answered with an error (a
	// MULTI/EXEC block's failed commands each count); Messages holds the
	// first few.
	Errors   int64
	Messages []string
}

// maxMessages bounds ReplayResult.Messages.
const maxMessages = 10

// pipelineCommands is how many commands go to the server in one round
// trip.
const pipelineCommands = 512

// Check proves the segments that a replay of c up to at reads whole
// before anything is written: each one's stored bytes against the SHA-256
// of its manifest, its header (and with it the age identity), and that
// they follow each other without a hole.
func Check(ctx context.Context, sink *sinks.Sink, c Chain, at time.Time, ids []age.Identity) error {
	next := c.Base.Offset + 1
	for _, s := range needed(c, at) {
		m, err := readManifest(ctx, sink, s.Name)
		if err != nil {
			return err
		}
		if m.FirstOffset != next || m.ReplID != s.ReplID || m.LastOffset != s.Last {
			return fmt.Errorf("%w: segment %s does not follow offset %d", errCorrupt, s.Name, next-1)
		}
		rc, err := sink.OpenSegment(ctx, s.Name)
		if err != nil {
			return err
		}
		h := sha256.New()
		n, err := io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("read segment %s: %w", s.Name, err)
		}
		if n != m.Size || hex.EncodeToString(h.Sum(nil)) != m.SHA256 {
			return fmt.Errorf("%w: segment %s does not match its manifest's size and SHA-256", errCorrupt, s.Name)
		}
		if rc, err = sink.OpenSegment(ctx, s.Name); err != nil {
			return err
		}
		sr, err := readSegment(rc, ids)
		rc.Close()
		if err != nil {
			return fmt.Errorf("segment %s: %w", s.Name, err)
		}
		if sr.Header.FirstOffset != m.FirstOffset || sr.Header.ReplID != m.ReplID {
			return fmt.Errorf("%w: segment %s: its header does not match its manifest", errCorrupt, s.Name)
		}
		next = m.LastOffset + 1
	}
	return nil
}

// needed returns the segments of c that hold commands received at or
// before at.
func needed(c Chain, at time.Time) []SegmentName {
	var out []SegmentName
	for _, s := range c.Segments {
		if s.FirstTime.After(at) {
			break
		}
		out = append(out, s)
	}
	return out
}

// IsCorrupt reports a segment that does not read as its format and
// manifest say.
func IsCorrupt(err error) bool { return errors.Is(err, errCorrupt) }

// Replay applies the commands of c's segments received at or before at to
// the server of opt, in order, on one connection (SELECT as the stream
// has it; each segment starts in the database its header names). A
// MULTI/EXEC block is written whole or not at all, as it is stored
// whole under its EXEC's time. The base must have been restored first.
func Replay(ctx context.Context, sink *sinks.Sink, c Chain, at time.Time, ids []age.Identity, opt *redis.Options) (ReplayResult, error) {
	res := ReplayResult{Reached: c.Base.Time, Offset: c.Base.Offset}
	o := *opt
	o.MaxRetries = -1 // a write is never sent twice (PITFALLS)
	o.PoolSize, o.DB = 1, 0
	client := redis.NewClient(&o)
	defer client.Close()
	conn := client.Conn()
	defer conn.Close()
	p := &applier{conn: conn, res: &res}
	for _, s := range needed(c, at) {
		done, err := p.segment(ctx, sink, s, at, ids)
		if err != nil {
			return res, err
		}
		res.Segments++
		if done {
			break
		}
	}
	if err := p.flush(ctx); err != nil {
		return res, err
	}
	return res, nil
}

// applier pipelines the commands of a replay.
type applier struct {
	conn  *redis.Conn
	res   *ReplayResult
	batch [][]any
}

// segment applies one segment's commands up to at; done says a command
// after at was met.
func (p *applier) segment(ctx context.Context, sink *sinks.Sink, s SegmentName, at time.Time, ids []age.Identity) (done bool, err error) {
	rc, err := sink.OpenSegment(ctx, s.Name)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	sr, err := readSegment(rc, ids)
	if err != nil {
		return false, fmt.Errorf("segment %s: %w", s.Name, err)
	}
	p.add([]any{"SELECT", sr.Header.DB})
	for {
		cmd, t, end, err := sr.Next()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("segment %s: %w", s.Name, err)
		}
		if t.After(at) {
			return true, nil
		}
		args, err := parseArgs(cmd)
		if err != nil {
			return false, fmt.Errorf("segment %s: %w", s.Name, err)
		}
		p.res.Reached, p.res.Offset = t, end
		if equalFold(args[0], "PING") || equalFold(args[0], "REPLCONF") {
			continue
		}
		a := make([]any, len(args))
		for i, v := range args {
			a[i] = string(v) // args alias the reader's buffer
		}
		p.add(a)
		p.res.Commands++
		if len(p.batch) >= pipelineCommands {
			if err := p.flush(ctx); err != nil {
				return false, err
			}
		}
	}
}

func (p *applier) add(args []any) { p.batch = append(p.batch, args) }

// flush sends the pending commands and counts the error replies; a
// connection failure ends the replay.
func (p *applier) flush(ctx context.Context) error {
	if len(p.batch) == 0 {
		return nil
	}
	cmds, err := p.conn.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, a := range p.batch {
			pipe.Do(ctx, a...)
		}
		return nil
	})
	p.batch = p.batch[:0]
	if err != nil && !isReply(err) {
		return fmt.Errorf("replay: %w", err)
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			if !isReply(err) {
				return fmt.Errorf("replay: %w", err)
			}
			p.fail(c.Args(), err)
			continue
		}
		// EXEC's answer holds each queued command's reply.
		if dc, ok := c.(*redis.Cmd); ok {
			if vals, ok := dc.Val().([]any); ok && strings.EqualFold(fmt.Sprint(c.Args()[0]), "EXEC") {
				for _, v := range vals {
					if e, ok := v.(error); ok {
						p.fail(c.Args(), e)
					}
				}
			}
		}
	}
	return nil
}

func (p *applier) fail(args []any, err error) {
	p.res.Errors++
	if len(p.res.Messages) < maxMessages {
		name := ""
		if len(args) > 0 {
			name = fmt.Sprint(args[0])
		}
		p.res.Messages = append(p.res.Messages, fmt.Sprintf("%s: %v", clip([]byte(name)), err))
	}
}

// isReply tells an error reply of the server from a connection failure.
func isReply(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && !errors.Is(err, redis.ErrClosed)
}
