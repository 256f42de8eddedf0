package client

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/partyline/partyline/realtime/wire"
)

// Subscription is the server's answer to a sub request.
type Subscription struct {
	Channel string
	// Position is the channel's current position when the server
	// subscribed the client: live delivery starts after it. With
	// Recovered, the replay of every publication after the since position
	// up to Position comes first.
	Position wire.Position
	// Recovered is true when the server will replay everything after the
	// since position. False after a Since means publications were lost:
	// reload through History.
	Recovered bool
	// Status is the current value of a status: channel, as sent by the
	// server; nil for other namespaces.
	Status json.RawMessage
}

// SubOption modifies a Subscribe call.
type SubOption func(*subConfig)

type subConfig struct {
	since *wire.Position
}

// Since asks the server to replay every publication after pos, for example a
// position the application saved from Positions before it restarted.
func Since(pos wire.Position) SubOption {
	return func(c *subConfig) { c.since = &pos }
}

// Subscribe subscribes to channel. Its publications, events and gaps arrive
// on Messages, and the client keeps the subscription across reconnects,
// resuming from the last position seen. The Subscription's Recovered answers
// a Since option; a failed automatic recovery after a reconnect is reported
// on Messages instead (TypeRecoveryFailed).
//
// A Subscribe that fails with a timeout may still have taken effect on the
// server; the client tracks the channel only once it has seen the ok reply.
func (c *Client) Subscribe(ctx context.Context, channel string, opts ...SubOption) (Subscription, error) {
	var cfg subConfig
	for _, o := range opts {
		o(&cfg)
	}
	r := wire.Request{Type: wire.TypeSub, Channel: channel, Since: cfg.since}
	hook := func(m wire.Message, err error) {
		if err == nil {
			c.track(channel, cfg.since, m, false)
		}
	}
	m, err := c.do(ctx, r, hook)
	if err != nil {
		return Subscription{}, err
	}
	return subscription(channel, m), nil
}

// Unsubscribe unsubscribes from channel and stops tracking it.
// Unsubscribing from a channel the client is not on is not an error. While
// the client reconnects, Unsubscribe returns at once: the new connection
// will not subscribe the channel.
func (c *Client) Unsubscribe(ctx context.Context, channel string) error {
	c.mu.Lock()
	delete(c.subs, channel)
	conn, closing, err := c.conn, c.closing, c.err
	c.mu.Unlock()
	if closing || err != nil {
		return stopped(wire.TypeUnsub, err)
	}
	if conn == nil {
		return nil
	}
	_, err = c.do(ctx, wire.Request{Type: wire.TypeUnsub, Channel: channel}, nil)
	return err
}

func subscription(channel string, m wire.Message) Subscription {
	var r struct {
		Recovered bool            `json:"recovered"`
		Status    json.RawMessage `json:"status"`
	}
	_ = json.Unmarshal(m.Raw, &r) // an ok reply is an object; missing fields stay zero
	return Subscription{
		Channel:   channel,
		Position:  wire.Position{Epoch: m.Epoch, Offset: m.Offset},
		Recovered: r.Recovered,
		Status:    r.Status,
	}
}

// track records a confirmed subscription from its ok reply, on the run
// goroutine and before any message after the reply is handled. After a
// recovered since, the position stays at since and advances with the replay,
// so a connection lost in the middle of a replay resumes where the replay
// stopped rather than at the reply's (later) current offset. resumed limits
// the update to channels still tracked, so that an Unsubscribe racing with a
// resubscription wins. It returns the subscription.
func (c *Client) track(channel string, since *wire.Position, m wire.Message, resumed bool) (Subscription, bool) {
	s := subscription(channel, m)
	pos := s.Position
	if since != nil && s.Recovered {
		pos = *since
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.subs[channel]; resumed && !ok {
		return s, false
	}
	c.subs[channel] = pos
	return s, true
}

// resubscribed returns the hook of an automatic resubscription from since.
func (c *Client) resubscribed(channel string, since wire.Position) func(wire.Message, error) {
	return func(m wire.Message, err error) {
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				return // lost with the connection: the next one retries
			}
			c.mu.Lock()
			delete(c.subs, channel)
			c.mu.Unlock()
			c.deliver(wire.Message{Type: TypeResubscribeFailed, Channel: channel, Code: e.Code, Message: e.Message})
			return
		}
		s, ok := c.track(channel, &since, m, true)
		if ok && !s.Recovered {
			c.deliver(wire.Message{Type: TypeRecoveryFailed, Channel: channel, Epoch: s.Position.Epoch, Offset: s.Position.Offset})
		}
	}
}
