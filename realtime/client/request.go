package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/coder/websocket"

	"github.com/partyline/partyline/realtime/wire"
)

// request is a wire.Request with its id on the wire. wire.Request keeps the
// id out of its JSON because the server decodes it separately.
type request struct {
	ID uint64 `json:"id,omitempty"`
	wire.Request
}

func encode(id uint64, r wire.Request) ([]byte, error) {
	return json.Marshal(request{ID: id, Request: r})
}

// Presence is the reply to a presence request.
type Presence struct {
	Count   int      `json:"count"`
	Members []Member `json:"members"`
}

// Member is a user subscribed to a channel, with how many connections they
// have on it.
type Member struct {
	User  string `json:"user"`
	Conns int    `json:"conns"`
}

// Publish publishes data to a room or dm channel and returns the stored
// message id and the publication's offset. data is encoded with
// encoding/json; a json.RawMessage is sent as is. A non-empty idem makes the
// publish idempotent: a retry with the same key returns the first result and
// publishes nothing new, so retry with it after ErrDisconnected.
func (c *Client) Publish(ctx context.Context, channel string, data any, idem string) (msgID string, offset uint64, err error) {
	raw, err := marshalData(data)
	if err != nil {
		return "", 0, fmt.Errorf("client: pub: %w", err)
	}
	m, err := c.do(ctx, wire.Request{Type: wire.TypePub, Channel: channel, Data: raw, Idem: idem}, nil)
	if err != nil {
		return "", 0, err
	}
	var r struct {
		MsgID string `json:"msg_id"`
	}
	if err := json.Unmarshal(m.Raw, &r); err != nil {
		return "", 0, fmt.Errorf("client: pub: bad reply: %w", err)
	}
	return r.MsgID, m.Offset, nil
}

// Edit replaces the data of message msgID, which the user wrote, and returns
// the offset of the edit publication.
func (c *Client) Edit(ctx context.Context, channel, msgID string, data any) (offset uint64, err error) {
	raw, err := marshalData(data)
	if err != nil {
		return 0, fmt.Errorf("client: edit: %w", err)
	}
	m, err := c.do(ctx, wire.Request{Type: wire.TypeEdit, Channel: channel, MsgID: msgID, Data: raw}, nil)
	if err != nil {
		return 0, err
	}
	return m.Offset, nil
}

// Delete deletes message msgID and returns the offset of the delete
// publication.
func (c *Client) Delete(ctx context.Context, channel, msgID string) (offset uint64, err error) {
	m, err := c.do(ctx, wire.Request{Type: wire.TypeDelete, Channel: channel, MsgID: msgID}, nil)
	if err != nil {
		return 0, err
	}
	return m.Offset, nil
}

// History returns up to limit messages of channel older than message before,
// newest first, in their latest state, and whether there are more. An empty
// before starts from the newest; limit 0 means the server's default (50).
func (c *Client) History(ctx context.Context, channel, before string, limit int) (msgs []wire.Message, more bool, err error) {
	m, err := c.do(ctx, wire.Request{Type: wire.TypeHistory, Channel: channel, Before: before, Limit: limit}, nil)
	if err != nil {
		return nil, false, err
	}
	var r struct {
		Messages []json.RawMessage `json:"messages"`
		More     bool              `json:"more"`
	}
	if err := json.Unmarshal(m.Raw, &r); err != nil {
		return nil, false, fmt.Errorf("client: history: bad reply: %w", err)
	}
	msgs = make([]wire.Message, 0, len(r.Messages))
	for _, raw := range r.Messages {
		hm, err := wire.DecodeMessage(raw)
		if err != nil {
			return nil, false, fmt.Errorf("client: history: bad message: %w", err)
		}
		msgs = append(msgs, hm)
	}
	return msgs, r.More, nil
}

// Read stores the user's read marker on channel at message msgID.
func (c *Client) Read(ctx context.Context, channel, msgID string) error {
	_, err := c.do(ctx, wire.Request{Type: wire.TypeRead, Channel: channel, MsgID: msgID}, nil)
	return err
}

// Presence lists the users subscribed to channel on any node.
func (c *Client) Presence(ctx context.Context, channel string) (Presence, error) {
	m, err := c.do(ctx, wire.Request{Type: wire.TypePresence, Channel: channel}, nil)
	if err != nil {
		return Presence{}, err
	}
	var p Presence
	if err := json.Unmarshal(m.Raw, &p); err != nil {
		return Presence{}, fmt.Errorf("client: presence: bad reply: %w", err)
	}
	return p, nil
}

// SetStatus sets the user's status (one of the wire.Status* constants), with
// an optional game and text, and publishes it to status:<user>.
func (c *Client) SetStatus(ctx context.Context, status, game, text string) error {
	_, err := c.do(ctx, wire.Request{Type: wire.TypeStatus, Status: status, Game: game, Text: text}, nil)
	return err
}

// Ping asks the server for its clock and returns it in Unix milliseconds.
// The Go client does not need it to stay connected (the WebSocket library
// answers the server's pings); it measures round trips.
func (c *Client) Ping(ctx context.Context) (serverMS int64, err error) {
	m, err := c.do(ctx, wire.Request{Type: wire.TypePing}, nil)
	if err != nil {
		return 0, err
	}
	return m.TS, nil
}

// Request sends any request, such as voice.join, and returns its ok reply,
// whose result fields are in Raw. req is a struct or map that encodes to a
// JSON object with a type and no id (a wire.Request qualifies); the client
// adds the id.
func (c *Client) Request(ctx context.Context, req any) (wire.Message, error) {
	b, typ, err := marshalMessage(req)
	if err != nil {
		return wire.Message{}, fmt.Errorf("client: request: %w", err)
	}
	build := func(id uint64) ([]byte, error) {
		out := make([]byte, 0, len(b)+24)
		out = append(out, `{"id":`...)
		out = strconv.AppendUint(out, id, 10)
		out = append(out, ',')
		return append(out, b[1:]...), nil
	}
	return c.roundTrip(ctx, typ, build, nil)
}

// Typing tells channel that the user is typing. It is a notification: no
// reply, and the server fans out at most one per channel every 2 s. It
// fails with ErrDisconnected while no connection is up rather than wait,
// because a late typing notice is worthless.
func (c *Client) Typing(ctx context.Context, channel string) error {
	b, err := encode(0, wire.Request{Type: wire.TypeTyping, Channel: channel})
	if err != nil {
		return fmt.Errorf("client: typing: %w", err)
	}
	return c.notify(ctx, wire.TypeTyping, b)
}

// Send sends a notification, a message without id that gets no reply, such
// as voice.answer or voice.ice. msg is a struct or map that encodes to a
// JSON object with a type and no id. Like Typing, it fails with
// ErrDisconnected while no connection is up.
func (c *Client) Send(ctx context.Context, msg any) error {
	b, typ, err := marshalMessage(msg)
	if err != nil {
		return fmt.Errorf("client: send: %w", err)
	}
	return c.notify(ctx, typ, b)
}

// do sends r as a request and waits for its reply.
func (c *Client) do(ctx context.Context, r wire.Request, hook func(wire.Message, error)) (wire.Message, error) {
	return c.roundTrip(ctx, r.Type, func(id uint64) ([]byte, error) { return encode(id, r) }, hook)
}

// roundTrip registers a request under a fresh id, writes build(id) and
// waits for the reply. The caller's goroutine does the waiting; replies
// arrive through the run goroutine.
func (c *Client) roundTrip(ctx context.Context, typ string, build func(id uint64) ([]byte, error), hook func(wire.Message, error)) (wire.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	id := c.ids.Add(1)
	b, err := build(id)
	if err != nil {
		return wire.Message{}, fmt.Errorf("client: %s: %w", typ, err)
	}
	cl := &call{typ: typ, done: make(chan result, 1), hook: hook}
	conn, err := c.register(ctx, id, cl, len(b))
	if err != nil {
		return wire.Message{}, err
	}
	if err := c.write(ctx, conn, b); err != nil {
		if c.forget(id) {
			if ctx.Err() != nil {
				return wire.Message{}, fmt.Errorf("client: %s: %w", typ, ctx.Err())
			}
			return wire.Message{}, fmt.Errorf("client: %s: %w: %w", typ, ErrDisconnected, err)
		}
		res := <-cl.done
		return res.m, res.err
	}
	select {
	case res := <-cl.done:
		return res.m, res.err
	case <-ctx.Done():
		if c.forget(id) {
			return wire.Message{}, fmt.Errorf("client: %s: %w", typ, ctx.Err())
		}
		// The reply, or the disconnect, won the race and is on its way.
		res := <-cl.done
		return res.m, res.err
	}
}

// register adds cl to the pending requests of the current connection and
// returns that connection, waiting for one while the client reconnects.
func (c *Client) register(ctx context.Context, id uint64, cl *call, size int) (*websocket.Conn, error) {
	for {
		c.mu.Lock()
		if c.closing || c.err != nil {
			err := c.err
			c.mu.Unlock()
			return nil, stopped(cl.typ, err)
		}
		if c.conn != nil {
			if limit := frameLimit(c.hello.Limits); size > limit {
				c.mu.Unlock()
				return nil, fmt.Errorf("client: %s: %d bytes, limit %d: %w", cl.typ, size, limit, ErrTooLarge)
			}
			c.pending[id] = cl
			conn := c.conn
			c.mu.Unlock()
			return conn, nil
		}
		up := c.up
		c.mu.Unlock()
		select {
		case <-up:
		case <-c.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("client: %s: waiting for a connection: %w", cl.typ, ctx.Err())
		}
	}
}

// stopped is the error of a request made after Close or after the client
// gave up.
func stopped(typ string, err error) error {
	if err == nil || errors.Is(err, ErrClosed) {
		return fmt.Errorf("client: %s: %w", typ, ErrClosed)
	}
	return fmt.Errorf("client: %s: %w: %w", typ, ErrClosed, err)
}

// forget removes a pending request and reports whether it was still
// pending.
func (c *Client) forget(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pending[id]
	delete(c.pending, id)
	return ok
}

// notify writes a notification on the current connection, if any.
func (c *Client) notify(ctx context.Context, typ string, b []byte) error {
	c.mu.Lock()
	conn, closing, err, limit := c.conn, c.closing, c.err, frameLimit(c.hello.Limits)
	c.mu.Unlock()
	switch {
	case closing || err != nil:
		return stopped(typ, err)
	case conn == nil:
		return fmt.Errorf("client: %s: %w", typ, ErrDisconnected)
	case len(b) > limit:
		return fmt.Errorf("client: %s: %d bytes, limit %d: %w", typ, len(b), limit, ErrTooLarge)
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	if err := c.write(ctx, conn, b); err != nil {
		return fmt.Errorf("client: %s: %w: %w", typ, ErrDisconnected, err)
	}
	return nil
}

// write sends one frame. Writes are serialized so that frames never
// interleave and a batch stays whole.
func (c *Client) write(ctx context.Context, conn *websocket.Conn, b []byte) error {
	select {
	case c.writeSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.writeSem }()
	return conn.Write(ctx, websocket.MessageText, b)
}

// marshalData encodes the data of a publication.
func marshalData(data any) (json.RawMessage, error) {
	switch d := data.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		return d, nil
	}
	return json.Marshal(data)
}

// marshalMessage encodes an application-built message and checks that it is
// an object with a type and without an id.
func marshalMessage(v any) (b []byte, typ string, err error) {
	b, err = json.Marshal(v)
	if err != nil {
		return nil, "", err
	}
	var env struct {
		Type string          `json:"type"`
		ID   json.RawMessage `json:"id"`
	}
	if !bytes.HasPrefix(b, []byte("{")) || json.Unmarshal(b, &env) != nil {
		return nil, "", errors.New("message must encode to a JSON object")
	}
	if env.Type == "" {
		return nil, "", errors.New("message has no type")
	}
	if len(env.ID) > 0 {
		return nil, "", errors.New("message must not carry an id; the client assigns it")
	}
	return b, env.Type, nil
}
