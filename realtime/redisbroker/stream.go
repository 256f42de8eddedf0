package redisbroker

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/partyline/partyline/realtime"
)

// Stream is the realtime.Stream on Redis. Each channel has a meta hash
// (epoch, last offset, last append time) and a Redis stream of at most
// HistorySize entries, whose ids are "<offset>-1" and whose fields are the
// payload ("d") and the append time in Unix milliseconds, Redis time
// ("t"). Publish is one Lua script that creates the epoch if needed,
// assigns the next offset, appends, sets the keys' expiry and publishes on
// the channel's pub/sub channel, so offsets are gapless and every node
// receives a channel's publications in offset order. Since filters out
// publications older than HistoryTTL when it reads.
//
// A Stream is bound to the Broker of its Engine: it publishes through the
// broker's batching publisher while the broker's Run runs, and straight
// to Redis otherwise. Methods are safe for concurrent use.
type Stream struct {
	b      *Broker
	size   int
	ttl    time.Duration
	keyTTL time.Duration
}

var _ realtime.Stream = (*Stream)(nil)

func newStream(b *Broker, opts Options) *Stream {
	return &Stream{b: b, size: opts.HistorySize, ttl: opts.HistoryTTL, keyTTL: opts.HistoryTTL + historyKeyMargin}
}

// Publish appends payload to ch's stream and publishes it to every node
// subscribed to ch, in one atomic script, and returns its position. A
// channel without an epoch (new, or whose keys were lost) gets a new one
// first, so a lost history is never continued silently. It blocks for one
// round trip (shared with concurrent publishes) and copies payload, so the
// caller may reuse it at once. An error means the publication may or may
// not have happened.
func (s *Stream) Publish(ctx context.Context, ch string, payload []byte) (realtime.Position, error) {
	pos, err := scriptPosition(s.b.pub.do(ctx, &pubCall{pub: s.publication(ch, bytes.Clone(payload), s.b.keys.channel(ch))}))
	if err != nil {
		return realtime.Position{}, fmt.Errorf("redis: publish to %s: %w", ch, err)
	}
	return pos, nil
}

// publication is payload's publication on ch, notified on the pub/sub
// channel notify.
func (s *Stream) publication(ch string, payload []byte, notify string) *publication {
	return &publication{meta: s.b.keys.meta(ch), stream: s.b.keys.stream(ch), epoch: newEpoch(), payload: payload, notify: notify}
}

// Since returns the publications of ch after from, oldest first, and ch's
// current position, in one atomic read. It returns ErrUnrecoverable with
// the current position when from has another epoch, is ahead of the
// stream, or when a publication after it was trimmed by count or is older
// than HistoryTTL. A channel without an epoch gets one, at offset 0, as
// Current does.
func (s *Stream) Since(ctx context.Context, ch string, from realtime.Position) ([]realtime.Publication, realtime.Position, error) {
	keys := []string{s.b.keys.meta(ch), s.b.keys.stream(ch)}
	args := []any{newEpoch(), from.Epoch, strconv.FormatUint(from.Offset, 10), s.ttl.Milliseconds(), s.keyTTL.Milliseconds(), s.size}
	v, err := sinceScript.Run(ctx, s.b.client, keys, args...).Result()
	if err != nil {
		return nil, realtime.Position{}, fmt.Errorf("redis: read %s since %s/%d: %w", ch, from.Epoch, from.Offset, err)
	}
	res, ok := v.([]any)
	if !ok || len(res) < 3 {
		return nil, realtime.Position{}, fmt.Errorf("redis: read %s: unexpected reply %T", ch, v)
	}
	cur, err := parsePosition(res[1:3])
	if err != nil {
		return nil, realtime.Position{}, fmt.Errorf("redis: read %s: %w", ch, err)
	}
	if n, _ := res[0].(int64); n != 1 {
		return nil, cur, realtime.ErrUnrecoverable
	}
	var entries []any
	if len(res) > 3 {
		entries, _ = res[3].([]any)
	}
	if len(entries) == 0 {
		return nil, cur, nil
	}
	pubs := make([]realtime.Publication, len(entries))
	for i, e := range entries {
		p, err := parseEntry(e)
		if err != nil {
			return nil, realtime.Position{}, fmt.Errorf("redis: read %s: %w", ch, err)
		}
		p.Epoch = cur.Epoch
		pubs[i] = p
	}
	return pubs, cur, nil
}

// Current returns ch's current position, creating its epoch at offset 0
// when it has none; concurrent callers agree, since the script is atomic.
func (s *Stream) Current(ctx context.Context, ch string) (realtime.Position, error) {
	keys := []string{s.b.keys.meta(ch), s.b.keys.stream(ch)}
	pos, err := scriptPosition(currentScript.Run(ctx, s.b.client, keys, newEpoch(), s.keyTTL.Milliseconds()).Result())
	if err != nil {
		return realtime.Position{}, fmt.Errorf("redis: current position of %s: %w", ch, err)
	}
	return pos, nil
}

// scriptPosition reads the position a script replied with, or returns
// the script's error.
func scriptPosition(v any, err error) (realtime.Position, error) {
	if err != nil {
		return realtime.Position{}, err
	}
	return parsePosition(v)
}

// parsePosition reads {epoch, offset} from a script reply.
func parsePosition(v any) (realtime.Position, error) {
	res, ok := v.([]any)
	if !ok || len(res) < 2 {
		return realtime.Position{}, fmt.Errorf("unexpected script reply %v", v)
	}
	epoch, ok := res[0].(string)
	if !ok || epoch == "" {
		return realtime.Position{}, fmt.Errorf("unexpected epoch %v", res[0])
	}
	off, err := strconv.ParseUint(fmt.Sprint(res[1]), 10, 64)
	if err != nil {
		return realtime.Position{}, fmt.Errorf("unexpected offset %v", res[1])
	}
	return realtime.Position{Epoch: epoch, Offset: off}, nil
}

// parseEntry reads one XRANGE entry: {"<offset>-1", {"d", payload, "t",
// time}}.
func parseEntry(e any) (realtime.Publication, error) {
	pair, ok := e.([]any)
	if !ok || len(pair) != 2 {
		return realtime.Publication{}, fmt.Errorf("unexpected stream entry %v", e)
	}
	id, _ := pair[0].(string)
	seq := len(id)
	for i := range id {
		if id[i] == '-' {
			seq = i
			break
		}
	}
	off, err := strconv.ParseUint(id[:seq], 10, 64)
	if err != nil {
		return realtime.Publication{}, fmt.Errorf("unexpected stream entry id %q", id)
	}
	fields, _ := pair[1].([]any)
	for i := 0; i+1 < len(fields); i += 2 {
		if f, _ := fields[i].(string); f == "d" {
			d, _ := fields[i+1].(string)
			return realtime.Publication{Position: realtime.Position{Offset: off}, Payload: []byte(d)}, nil
		}
	}
	return realtime.Publication{}, fmt.Errorf("stream entry %q has no payload", id)
}
