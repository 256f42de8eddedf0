package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/realtime/wire"
)

// pubReply is the ok reply to pub.
type pubReply struct {
	MsgID  string `json:"msg_id"`
	Offset uint64 `json:"offset"`
}

// offsetReply is the ok reply to edit and delete: the offset of their own
// publication.
type offsetReply struct {
	Offset uint64 `json:"offset"`
}

// historyReply is the ok reply to history and the body of
// GET /v1/rooms/{id}/messages, which also sets NextCursor.
type historyReply struct {
	Messages   []msgJSON `json:"messages"`
	More       bool      `json:"more"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

// msgJSON is a stored message as a msg object, in its latest state.
type msgJSON struct {
	Type     string          `json:"type"`
	Channel  string          `json:"channel"`
	Offset   uint64          `json:"offset,omitempty"`
	Epoch    string          `json:"epoch,omitempty"`
	ID       string          `json:"id"`
	Kind     string          `json:"kind"`
	From     string          `json:"from"`
	TS       int64           `json:"ts"`
	EditedTS int64           `json:"edited_ts,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
}

func toMsgJSON(m Message) msgJSON {
	j := msgJSON{
		Type:    wire.TypeMsg,
		Channel: m.Channel,
		ID:      m.ID,
		Kind:    wire.KindMessage,
		From:    m.Author,
		TS:      m.CreatedAt.UnixMilli(),
		Data:    m.Data,
	}
	if m.Offset != 0 {
		j.Offset, j.Epoch = m.Offset, m.Epoch
	}
	if !m.EditedAt.IsZero() {
		j.EditedTS = m.EditedAt.UnixMilli()
	}
	return j
}

func toMsgsJSON(msgs []Message) []msgJSON {
	out := make([]msgJSON, len(msgs))
	for i, m := range msgs {
		out[i] = toMsgJSON(m)
	}
	return out
}

// newMessage returns a message created now, with a new ULID of that time.
func newMessage(ch, author string, data json.RawMessage, idem string) Message {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return Message{
		ID:        ulid.MustNew(ulid.Timestamp(now), ulid.DefaultEntropy()).String(),
		Channel:   ch,
		Author:    author,
		Data:      data,
		IdemKey:   idem,
		CreatedAt: now,
	}
}

// checkData checks a message's data and returns it compacted: a JSON object
// within the size limit. Compacting drops every raw newline, which would
// otherwise split the msg in the line-delimited frames.
func (c *Service) checkData(data json.RawMessage) (json.RawMessage, error) {
	d := bytes.TrimSpace(data)
	if len(d) == 0 || string(d) == "null" {
		return nil, partyline.Errorf(partyline.ErrInvalid, "data is required")
	}
	if len(d) > c.maxBytes {
		return nil, partyline.Errorf(partyline.ErrTooLarge, "data is over %d bytes", c.maxBytes)
	}
	if d[0] != '{' {
		return nil, partyline.Errorf(partyline.ErrInvalid, "data must be a JSON object")
	}
	var buf bytes.Buffer
	buf.Grow(len(d))
	if err := json.Compact(&buf, d); err != nil {
		return nil, partyline.Errorf(partyline.ErrInvalid, "data is not valid JSON")
	}
	return buf.Bytes(), nil
}

// checkIdem checks an optional idempotency key: at most 64 bytes of
// [A-Za-z0-9_.:-].
func checkIdem(idem string) error {
	if len(idem) > maxIdemBytes {
		return partyline.Errorf(partyline.ErrInvalid, "idem is over %d bytes", maxIdemBytes)
	}
	for i := 0; i < len(idem); i++ {
		b := idem[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' ||
			b == '_' || b == '.' || b == ':' || b == '-') {
			return partyline.Errorf(partyline.ErrInvalid, "idem has a character outside [A-Za-z0-9_.:-]")
		}
	}
	return nil
}

// chatChannel checks that ch is a room or dm channel, the only ones chat
// serves. Any other valid channel gets an error of kind why (forbidden for
// publishing, which is the server's there; invalid for history and read,
// which it does not keep), with msg after the channel name.
func chatChannel(ch string, why error, msg string) error {
	ns, _, err := wire.ParseChannel(ch)
	if err != nil {
		return err
	}
	if ns != wire.NSRoom && ns != wire.NSDM {
		return partyline.Errorf(why, "%s: %s", ch, msg)
	}
	return nil
}

// pubChannel checks that a client may edit or delete on ch at all.
func pubChannel(ch string) error {
	return chatChannel(ch, partyline.ErrForbidden, "only the server publishes there")
}

// storedChannel checks that ch keeps durable history.
func storedChannel(ch string) error {
	return chatChannel(ch, partyline.ErrInvalid, "history and read are for room and dm channels")
}

// message returns the message id of channel ch, deleted or not, or
// not_found when there is none in that channel.
func (c *Service) message(ctx context.Context, ch, id string) (Message, error) {
	if id == "" {
		return Message{}, partyline.Errorf(partyline.ErrInvalid, "msg_id is required")
	}
	if !wire.ValidID(id) {
		return Message{}, partyline.Errorf(partyline.ErrInvalid, "msg_id is not a message id")
	}
	m, err := c.store.GetMessage(ctx, id)
	if errors.Is(err, partyline.ErrNotFound) || err == nil && m.Channel != ch {
		return Message{}, partyline.Errorf(partyline.ErrNotFound, "no message %s in %s", id, ch)
	}
	if err != nil {
		return Message{}, &depError{op: "get message " + id, err: err}
	}
	return m, nil
}

// claim marks the first publication of message id as under way in this
// process. When nobody holds it, it returns the function that ends the
// claim; when somebody does, it returns a channel closed when they are
// done.
func (c *Service) claim(id string) (release func(), busy <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.inflight[id]; ok {
		return nil, ch
	}
	done := make(chan struct{})
	c.inflight[id] = done
	return func() {
		c.mu.Lock()
		delete(c.inflight, id)
		c.mu.Unlock()
		close(done)
	}, nil
}

// publishStored publishes a stored message with kind and records the
// position. A failure to record it is logged, not returned: the message is
// committed and out, and failing the request would make a client retry
// publish it again.
func (c *Service) publishStored(ctx context.Context, m Message, kind string) (wire.Position, error) {
	pos, err := c.publish(ctx, m.Channel, m.ID, kind, m.Author, m.CreatedAt, m.Data)
	if err != nil {
		return wire.Position{}, err
	}
	if err := c.store.SetMessagePosition(ctx, m.ID, pos.Epoch, pos.Offset); err != nil {
		c.log.WarnContext(ctx, "chat: recording a message's stream position failed",
			"msg_id", m.ID, "channel", m.Channel, "err", err)
	}
	return pos, nil
}

// settle returns the position of an earlier message that an idempotent
// retry repeats. A message with no recorded position was never published,
// or is being published right now by another request of this process: the
// first case publishes it now, the second waits for it.
func (c *Service) settle(ctx context.Context, m Message) (wire.Position, error) {
	for m.Offset == 0 {
		release, busy := c.claim(m.ID)
		if busy != nil {
			select {
			case <-busy:
			case <-ctx.Done():
				return wire.Position{}, &depError{op: "wait for the publication of " + m.ID, err: ctx.Err()}
			}
		}
		fresh, err := c.store.GetMessage(ctx, m.ID)
		if err != nil {
			if release != nil {
				release()
			}
			return wire.Position{}, &depError{op: "get message " + m.ID, err: err}
		}
		m = fresh
		if release == nil || m.Offset != 0 {
			if release != nil {
				release()
			}
			continue
		}
		pos, err := c.publishStored(ctx, m, wire.KindMessage)
		release()
		return pos, err
	}
	return wire.Position{Epoch: m.Epoch, Offset: m.Offset}, nil
}

// handlePub stores a client's message, then publishes it: the message is
// committed before it is acknowledged and before it is fanned out. It is
// the Publish of chat's namespaces, so the gateway has applied the publish
// rate and Authorize (ActionPublish: a member of the room, or one of the
// dm's two users) before it runs.
func (c *Service) handlePub(ctx context.Context, s *realtime.Session, req *wire.Request) (any, error) {
	data, err := c.checkData(req.Data)
	if err != nil {
		return nil, err
	}
	if err := checkIdem(req.Idem); err != nil {
		return nil, err
	}
	m := newMessage(req.Channel, s.User(), data, req.Idem)
	release, _ := c.claim(m.ID)
	stored, created, err := c.store.InsertMessage(ctx, m)
	if err != nil {
		release()
		return nil, &depError{op: "store message on " + req.Channel, err: err}
	}
	var pos wire.Position
	if created {
		pos, err = c.publishStored(ctx, stored, wire.KindMessage)
		release()
	} else {
		release()
		if stored.Channel != req.Channel {
			return nil, partyline.Errorf(partyline.ErrConflict, "idem %s was used for a message in another channel", req.Idem)
		}
		pos, err = c.settle(ctx, stored)
	}
	if err != nil {
		return nil, err
	}
	return pubReply{MsgID: stored.ID, Offset: pos.Offset}, nil
}

// checkChange checks what edit and delete check first, in this order: a
// channel on which clients change messages, the user's publish rate, and a
// msg_id.
func checkChange(s *realtime.Session, req *wire.Request) error {
	if err := pubChannel(req.Channel); err != nil {
		return err
	}
	if err := s.AllowPublish(); err != nil {
		return err
	}
	if req.MsgID == "" {
		return partyline.Errorf(partyline.ErrInvalid, "msg_id is required")
	}
	return nil
}

// liveMessage returns the message that an edit or delete names, and the
// room of its channel (zero for a dm), when the user may publish there.
// A deleted message is not_found, its detail "message <id> <gone>".
func (c *Service) liveMessage(ctx context.Context, s *realtime.Session, req *wire.Request, gone string) (Room, Message, error) {
	room, err := c.access(ctx, s.User(), req.Channel, realtime.ActionPublish, false)
	if err != nil {
		return Room{}, Message{}, err
	}
	m, err := c.message(ctx, req.Channel, req.MsgID)
	if err != nil {
		return Room{}, Message{}, err
	}
	if !m.DeletedAt.IsZero() {
		return Room{}, Message{}, partyline.Errorf(partyline.ErrNotFound, "message %s %s", m.ID, gone)
	}
	return room, m, nil
}

// changeError is the error of an edit or delete (op) of message id that
// the store refused: one deleted meanwhile is not_found, as liveMessage
// reports it.
func changeError(op, id, gone string, err error) error {
	if errors.Is(err, partyline.ErrNotFound) {
		return partyline.Errorf(partyline.ErrNotFound, "message %s %s", id, gone)
	}
	return &depError{op: op + " message " + id, err: err}
}

// publishChange publishes a stored edit or delete (kind) of message m.
func (c *Service) publishChange(ctx context.Context, s *realtime.Session, m Message, kind string, data json.RawMessage) (any, error) {
	pos, err := c.publish(ctx, m.Channel, m.ID, kind, s.User(), time.Now(), data)
	if err != nil {
		return nil, err
	}
	return offsetReply{Offset: pos.Offset}, nil
}

// handleEdit replaces the data of the author's own message and publishes
// the edit.
func (c *Service) handleEdit(ctx context.Context, s *realtime.Session, req *wire.Request) (any, error) {
	if err := checkChange(s, req); err != nil {
		return nil, err
	}
	data, err := c.checkData(req.Data)
	if err != nil {
		return nil, err
	}
	const gone = "was deleted"
	_, m, err := c.liveMessage(ctx, s, req, gone)
	if err != nil {
		return nil, err
	}
	if m.Author != s.User() {
		return nil, partyline.Errorf(partyline.ErrForbidden, "only the author edits a message")
	}
	if _, err := c.store.EditMessage(ctx, m.ID, data, time.Now()); err != nil {
		return nil, changeError("edit", m.ID, gone, err)
	}
	return c.publishChange(ctx, s, m, wire.KindEdit, data)
}

// handleDelete deletes a message, by its author or the room's owner, and
// publishes the delete.
func (c *Service) handleDelete(ctx context.Context, s *realtime.Session, req *wire.Request) (any, error) {
	if err := checkChange(s, req); err != nil {
		return nil, err
	}
	const gone = "was already deleted"
	room, m, err := c.liveMessage(ctx, s, req, gone)
	if err != nil {
		return nil, err
	}
	if m.Author != s.User() && (room.ID == "" || room.Owner != s.User()) {
		return nil, partyline.Errorf(partyline.ErrForbidden, "only the author or the room's owner deletes a message")
	}
	if _, err := c.store.DeleteMessage(ctx, m.ID, time.Now()); err != nil {
		return nil, changeError("delete", m.ID, gone, err)
	}
	return c.publishChange(ctx, s, m, wire.KindDelete, nil)
}

// historyLimit applies the protocol's history limit: zero means 50, more
// than 200 means 200, and a negative limit is an error.
func historyLimit(n int) (int, error) {
	switch {
	case n < 0:
		return 0, partyline.Errorf(partyline.ErrInvalid, "limit must not be negative")
	case n == 0:
		return wire.DefaultHistoryLimit, nil
	case n > wire.MaxHistoryLimit:
		return wire.MaxHistoryLimit, nil
	}
	return n, nil
}

// history reads a page of ch's messages, newest first.
func (c *Service) history(ctx context.Context, ch, before string, limit int) (historyReply, error) {
	if before != "" && !wire.ValidID(before) {
		return historyReply{}, partyline.Errorf(partyline.ErrInvalid, "before is not a message id")
	}
	limit, err := historyLimit(limit)
	if err != nil {
		return historyReply{}, err
	}
	msgs, more, err := c.store.History(ctx, ch, before, limit)
	if err != nil {
		return historyReply{}, &depError{op: "history of " + ch, err: err}
	}
	return historyReply{Messages: toMsgsJSON(msgs), More: more}, nil
}

// handleHistory returns messages in their latest state, newest first. Any
// user allowed to subscribe may read, and reading a public room does not
// join it.
func (c *Service) handleHistory(ctx context.Context, s *realtime.Session, req *wire.Request) (any, error) {
	if err := storedChannel(req.Channel); err != nil {
		return nil, err
	}
	if _, err := c.access(ctx, s.User(), req.Channel, realtime.ActionSubscribe, false); err != nil {
		return nil, err
	}
	return c.history(ctx, req.Channel, req.Before, req.Limit)
}

// handleRead stores the user's read marker. The marker lives on the
// membership, so reading a public room joins it, as subscribing does.
func (c *Service) handleRead(ctx context.Context, s *realtime.Session, req *wire.Request) (any, error) {
	if err := storedChannel(req.Channel); err != nil {
		return nil, err
	}
	if _, err := c.access(ctx, s.User(), req.Channel, realtime.ActionSubscribe, true); err != nil {
		return nil, err
	}
	m, err := c.message(ctx, req.Channel, req.MsgID)
	if err != nil {
		return nil, err
	}
	if err := c.store.SetReadMarker(ctx, req.Channel, s.User(), m.ID); err != nil {
		if errors.Is(err, partyline.ErrNotFound) {
			return nil, partyline.Errorf(partyline.ErrForbidden, "not a member of %s", req.Channel)
		}
		return nil, &depError{op: "set read marker on " + req.Channel, err: err}
	}
	return nil, nil
}
