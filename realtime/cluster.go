package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/partyline/partyline/realtime/wire"
)

// nodeMsg is a node-to-node message sent with Broker.SendNode.
type nodeMsg struct {
	Op      string `json:"op"`
	From    string `json:"from"`
	Req     uint64 `json:"req,omitempty"`
	User    string `json:"user,omitempty"`
	Code    int    `json:"code,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Closed  int    `json:"closed,omitempty"`
	Channel string `json:"channel,omitempty"`

	Body json.RawMessage `json:"body,omitempty"` // an extension's message
}

const (
	opDisconnect    = "disconnect"
	opDisconnectAck = "disconnect.ack"
)

// clusterCalls tracks node-to-node requests waiting for their acks.
type clusterCalls struct {
	next    atomic.Uint64
	mu      sync.Mutex
	waiting map[uint64]chan nodeMsg
}

// ackTimeout bounds how long a cluster-wide call waits for other nodes.
const ackTimeout = 2 * time.Second

// DisconnectEverywhere closes every connection of user on every node and
// returns how many it closed. Nodes that do not answer within a short
// timeout are left out of the count; their connections still close when
// the message reaches them.
func (n *Node) DisconnectEverywhere(ctx context.Context, user string, code int, reason string) (int, error) {
	closed := n.DisconnectUser(user, code, reason)
	nodes, err := n.opts.Broker.Nodes(ctx)
	if err != nil {
		return closed, fmt.Errorf("realtime: list nodes: %w", err)
	}
	req := n.calls.next.Add(1)
	acks := make(chan nodeMsg, len(nodes))
	n.calls.mu.Lock()
	if n.calls.waiting == nil {
		n.calls.waiting = map[uint64]chan nodeMsg{}
	}
	n.calls.waiting[req] = acks
	n.calls.mu.Unlock()
	defer func() {
		n.calls.mu.Lock()
		delete(n.calls.waiting, req)
		n.calls.mu.Unlock()
	}()
	msg, _ := json.Marshal(nodeMsg{Op: opDisconnect, From: n.opts.NodeID, Req: req, User: user, Code: code, Reason: reason})
	asked := 0
	for _, id := range nodes {
		if id == n.opts.NodeID {
			continue
		}
		if err := n.opts.Broker.SendNode(ctx, id, msg); err != nil {
			n.opts.Logger.Warn("disconnect: node unreachable", "node", id, "err", err)
			continue
		}
		asked++
	}
	timer := time.NewTimer(ackTimeout)
	defer timer.Stop()
	for ; asked > 0; asked-- {
		select {
		case a := <-acks:
			closed += a.Closed
		case <-timer.C:
			n.opts.Logger.Warn("disconnect: nodes did not answer in time", "missing", asked)
			return closed, nil
		case <-ctx.Done():
			return closed, ctx.Err()
		}
	}
	return closed, nil
}

// DeliverNode implements Deliverer for node-to-node messages. It must not
// block or call the broker, so replies go out on their own goroutine.
func (n *Node) DeliverNode(b []byte) {
	var m nodeMsg
	if err := json.Unmarshal(b, &m); err != nil {
		n.opts.Logger.Warn("bad node message", "err", err)
		return
	}
	if strings.HasPrefix(m.Op, extPrefix) {
		n.deliverExt(m)
		return
	}
	switch m.Op {
	case opDisconnect:
		closed := n.DisconnectUser(m.User, m.Code, m.Reason)
		ack, _ := json.Marshal(nodeMsg{Op: opDisconnectAck, From: n.opts.NodeID, Req: m.Req, Closed: closed})
		n.background.Add(1)
		go func() {
			defer n.background.Done()
			ctx, cancel := context.WithTimeout(context.Background(), ackTimeout)
			defer cancel()
			if err := n.opts.Broker.SendNode(ctx, m.From, ack); err != nil {
				n.opts.Logger.Warn("disconnect ack failed", "node", m.From, "err", err)
			}
		}()
	case opRemove:
		n.removeLocal(m.User, m.Channel, m.Reason)
	case opDisconnectAck:
		n.calls.mu.Lock()
		ch := n.calls.waiting[m.Req]
		n.calls.mu.Unlock()
		if ch != nil {
			select {
			case ch <- m:
			default:
			}
		}
	}
}

// opRemove asks a node to end a user's subscriptions to a channel.
const opRemove = "remove"

// RemoveFromChannel ends every subscription of user to ch, on every node,
// as when the user is taken out of a private room. Each ended subscription
// gets an unsubscribed notification, so the client knows it no longer
// receives the channel. It does not wait for other nodes.
func (n *Node) RemoveFromChannel(ctx context.Context, user, ch, reason string) error {
	n.removeLocal(user, ch, reason)
	nodes, err := n.opts.Broker.Nodes(ctx)
	if err != nil {
		return fmt.Errorf("realtime: list nodes: %w", err)
	}
	msg, _ := json.Marshal(nodeMsg{Op: opRemove, From: n.opts.NodeID, User: user, Channel: ch, Reason: reason})
	for _, id := range nodes {
		if id != n.opts.NodeID {
			if err := n.opts.Broker.SendNode(ctx, id, msg); err != nil {
				n.opts.Logger.Warn("remove from channel: node unreachable", "node", id, "err", err)
			}
		}
	}
	return nil
}

// removeLocal ends user's subscriptions to ch on this node. Presence and
// hub updates may block briefly, so they run on a goroutine of their own.
func (n *Node) removeLocal(user, ch, reason string) {
	for _, c := range n.userConns(user) {
		c.subsMu.Lock()
		sub := c.subs[ch]
		c.subsMu.Unlock()
		if sub == nil {
			continue
		}
		n.background.Add(1)
		go func() {
			defer n.background.Done()
			ctx, cancel := context.WithTimeout(context.Background(), ackTimeout)
			defer cancel()
			c.leave(ctx, sub)
			c.send(wire.AppendUnsubscribed(nil, ch, reason))
		}()
	}
}
