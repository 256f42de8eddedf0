package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	partyline "github.com/partyline/partyline"
	"github.com/partyline/partyline/internal/testenv"
)

// linkedBroker joins one-node memory brokers so that SendNode reaches the
// peer with the named id.
type linkedBroker struct {
	*MemoryBroker
	peers map[string]*MemoryBroker
}

func (b linkedBroker) SendNode(ctx context.Context, node string, msg []byte) error {
	if p := b.peers[node]; p != nil {
		return p.SendNode(ctx, node, msg)
	}
	return b.MemoryBroker.SendNode(ctx, node, msg)
}

type gotNodeMsg struct {
	from string
	body string
}

func recordNodeOps(n *Node, op string) (got func() []gotNodeMsg) {
	var mu sync.Mutex
	var msgs []gotNodeMsg
	n.HandleNode(op, func(from string, body json.RawMessage) {
		mu.Lock()
		msgs = append(msgs, gotNodeMsg{from, string(body)})
		mu.Unlock()
	})
	return func() []gotNodeMsg {
		mu.Lock()
		defer mu.Unlock()
		return append([]gotNodeMsg(nil), msgs...)
	}
}

func TestNodeMessages(t *testing.T) {
	peers := map[string]*MemoryBroker{}
	ba := NewMemoryBroker(MemoryBrokerOptions{NodeID: "a"})
	bb := NewMemoryBroker(MemoryBrokerOptions{NodeID: "b"})
	peers["a"], peers["b"] = ba, bb
	a := startNode(t, Options{NodeID: "a", Broker: linkedBroker{ba, peers}, Stream: NewMemoryStream(ba, MemoryStreamOptions{})})
	b := startNode(t, Options{NodeID: "b", Broker: linkedBroker{bb, peers}, Stream: NewMemoryStream(bb, MemoryStreamOptions{})})
	gotA := recordNodeOps(a.Node, "test.echo")
	gotB := recordNodeOps(b.Node, "test.echo")

	if err := a.SendNode(t.Context(), "b", "test.echo", map[string]int{"n": 1}); err != nil {
		t.Fatalf("SendNode a to b: %v", err)
	}
	testenv.Eventually(t, "b's message", func() bool { return len(gotB()) == 1 })
	if m := gotB()[0]; m.from != "a" || m.body != `{"n":1}` {
		t.Errorf("b got %+v, want from a with {\"n\":1}", m)
	}

	if err := a.SendNode(t.Context(), "a", "test.echo", "self"); err != nil {
		t.Fatalf("SendNode to itself: %v", err)
	}
	testenv.Eventually(t, "a's message to itself", func() bool { return len(gotA()) == 1 })
	if m := gotA()[0]; m.from != "a" || m.body != `"self"` {
		t.Errorf("a got %+v, want from a with \"self\"", m)
	}

	if err := a.SendNode(t.Context(), "a", "test.none", nil); !errors.Is(err, partyline.ErrNotFound) {
		t.Errorf("SendNode to an op without handler = %v, want ErrNotFound", err)
	}
	if err := a.SendNode(t.Context(), "z", "test.echo", nil); !errors.Is(err, partyline.ErrNotFound) {
		t.Errorf("SendNode to an unknown node = %v, want ErrNotFound", err)
	}
	if err := a.SendNode(t.Context(), "b", "test.echo", func() {}); err == nil {
		t.Error("SendNode with a body JSON cannot encode succeeded")
	}
	// A message for an op b has no handler for is dropped, not fatal.
	if err := a.SendNode(t.Context(), "b", "test.unknown", 1); err != nil {
		t.Errorf("SendNode to b's unknown op: %v", err)
	}
	if nodes, err := a.Nodes(t.Context()); err != nil || len(nodes) != 1 || nodes[0] != "a" {
		t.Errorf("Nodes() = %v, %v; want [a] (memory broker)", nodes, err)
	}
}
