package realtime

import (
	"context"
	"encoding/json"
	"fmt"

	partyline "github.com/partyline/partyline"
)

// NodeHandler receives a message another node sent to this one with
// Node.SendNode. It runs on the broker's receive path, so it must not
// block: anything slow goes on a goroutine of its own.
type NodeHandler func(from string, body json.RawMessage)

// extPrefix keeps extension ops apart from the node's own.
const extPrefix = "x."

// HandleNode registers h for node messages with op, such as "voice.relay".
// Call it before Run. A second handler for one op replaces the first.
func (n *Node) HandleNode(op string, h NodeHandler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nodeOps == nil {
		n.nodeOps = map[string]NodeHandler{}
	}
	n.nodeOps[op] = h
}

// SendNode sends body, encoded as JSON, to the handler of op on the node
// with id node, at most once. Sending to this node's own id calls the
// handler on a goroutine. An unknown node is an error wrapping
// partyline.ErrNotFound.
func (n *Node) SendNode(ctx context.Context, node, op string, body any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("realtime: node message %s: %w", op, err)
	}
	if node == n.opts.NodeID {
		h := n.nodeHandler(op)
		if h == nil {
			return partyline.Errorf(partyline.ErrNotFound, "no handler for node op %q", op)
		}
		n.background.Add(1)
		go func() {
			defer n.background.Done()
			h(node, raw)
		}()
		return nil
	}
	msg, _ := json.Marshal(nodeMsg{Op: extPrefix + op, From: n.opts.NodeID, Body: raw})
	return n.opts.Broker.SendNode(ctx, node, msg)
}

// Nodes lists the nodes alive now, this one included, as the Broker
// knows them.
func (n *Node) Nodes(ctx context.Context) ([]string, error) { return n.opts.Broker.Nodes(ctx) }

func (n *Node) nodeHandler(op string) NodeHandler {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.nodeOps[op]
}

// deliverExt hands an extension's node message to its handler.
func (n *Node) deliverExt(m nodeMsg) {
	h := n.nodeHandler(m.Op[len(extPrefix):])
	if h == nil {
		n.opts.Logger.Warn("node message without a handler", "op", m.Op, "from", m.From)
		return
	}
	h(m.From, m.Body)
}
