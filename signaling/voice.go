package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/realtime/wire"
)

var _ realtime.Extension = (*Service)(nil)

// Node is what the Service needs of the gateway node it plugs into.
// *realtime.Node satisfies it; the assembly passes it in Options.Node.
type Node interface {
	// ID returns the node id.
	ID() string
	// Publish appends a publication to a channel's stream and fans it out.
	// An empty id means a new message id.
	Publish(ctx context.Context, ch, id, kind, from string, data json.RawMessage) (wire.Position, error)
	// PublishEvent fans an ephemeral event out on a channel.
	PublishEvent(ctx context.Context, ch, event, from, user string, users []string) error
	// HandleNode registers a handler of node-to-node messages; before Run.
	HandleNode(op string, h realtime.NodeHandler)
	// SendNode sends a node-to-node message, at most once.
	SendNode(ctx context.Context, node, op string, body any) error
	// Nodes lists the live nodes.
	Nodes(ctx context.Context) ([]string, error)
}

// Publication kinds on voice:<room> channels.
const (
	KindJoined = "voice.joined"
	KindLeft   = "voice.left"
	KindMuted  = "voice.muted"
)

// Reasons a participant left, in voice.left's data.
const (
	ReasonLeft           = "left"            // voice.leave
	ReasonClosed         = "closed"          // the WebSocket closed
	ReasonKicked         = "kicked"          // voice.kick by the owner
	ReasonICE            = "ice_failed"      // ICE disconnected or failed for DisconnectTimeout
	ReasonConnectTimeout = "connect_timeout" // never connected within ConnectTimeout
	ReasonNodeLost       = "node_lost"       // the media node or the participant's node died
	ReasonMoved          = "moved"           // the room's placement was lost to another node
	ReasonShutdown       = "shutdown"        // the media node is shutting down
	ReasonRenegotiate    = "renegotiate"     // the session grew too large; rejoin for a fresh one
	ReasonError          = "error"           // the server failed to negotiate
)

// Service is the voice extension of the gateway: the voice namespace, the
// voice.* requests, and the SFU that hosts voice rooms on this node. It
// is safe for concurrent use.
type Service struct {
	opts    Options
	metrics *metrics
	log     *slog.Logger

	node   Node
	nodeID string
	media  atomic.Pointer[media]
	runCtx context.Context // set by Run; cancelled when Run stops
	ran    atomic.Bool

	// mu guards rooms (the rooms hosted here) and bindings (the voice
	// rooms of this node's sessions). Lock order: Service.mu, then a room's
	// mailbox lock, then a binding's lock.
	mu       sync.Mutex
	rooms    map[string]*room
	bindings map[string]*binding
	hooked   map[string]bool // sessions whose OnClose is registered

	// pending relayed requests waiting for their reply, by request id.
	pmu     sync.Mutex
	pending map[uint64]chan relayReply
	nextRID atomic.Uint64

	// gmu guards stopping; wg counts the goroutines the Service starts besides
	// the room actors (roomWG).
	gmu      sync.Mutex
	stopping bool
	wg       sync.WaitGroup
	roomWG   sync.WaitGroup
}

// New checks opts, fills in the defaults, builds a Service and registers its
// node-to-node handlers with opts.Node. It starts no goroutines and opens
// no sockets: Run does.
func New(opts Options) (*Service, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	if ttl := opts.Placement.TTL(); opts.RefreshInterval*2 > ttl {
		return nil, fmt.Errorf("signaling: RefreshInterval %v must be under half the placement TTL %v: %w",
			opts.RefreshInterval, ttl, partyline.ErrInvalid)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("signaling: metrics: %w", err)
	}
	v := &Service{
		opts:     opts,
		metrics:  m,
		log:      opts.Logger,
		node:     opts.Node,
		nodeID:   opts.Node.ID(),
		rooms:    map[string]*room{},
		bindings: map[string]*binding{},
		hooked:   map[string]bool{},
		pending:  map[uint64]chan relayReply{},
	}
	v.node.HandleNode(opRequest, v.onRelayRequest)
	v.node.HandleNode(opReply, v.onRelayReply)
	v.node.HandleNode(opOut, v.onRelayOut)
	v.node.HandleNode(opUnbind, v.onRelayUnbind)
	return v, nil
}

// Run opens the voice sockets, logs the self-check, and hosts voice rooms
// until ctx is done. It then removes every participant of the rooms
// hosted here (they get voice.left with reason "shutdown"), closes their
// PeerConnections, waits for every goroutine the Service started, and closes the
// sockets before it returns nil. It returns an error at once when the
// sockets cannot be opened. Cancel it before the
// Node's Run ends, so the voice.left publications still go out. Run may be
// called once.
func (v *Service) Run(ctx context.Context) error {
	if !v.ran.CompareAndSwap(false, true) {
		return errors.New("signaling: Run called twice")
	}
	m, err := openMedia(&v.opts, v.metrics)
	if err != nil {
		return err
	}
	v.runCtx = ctx
	v.media.Store(m)
	c := m.selfCheck(&v.opts)
	v.log.Info("voice: ready", "udp", c.UDP, "tcp", c.TCP, "advertised", c.Advertised, "loopback", c.Loopback, "node", v.nodeID)
	if len(c.Advertised) == 0 {
		v.log.Warn("voice: no address to advertise; clients will not reach this node", "udp", c.UDP)
	}

	tick := time.NewTicker(v.opts.RefreshInterval)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			v.refresh(ctx)
		}
	}
	v.shutdown(m)
	return nil
}

// SelfCheck reports the bound sockets and the advertised addresses. It
// returns an error wrapping partyline.ErrUnavailable before Run has
// opened the sockets.
func (v *Service) SelfCheck() (SelfCheck, error) {
	m := v.media.Load()
	if m == nil {
		return SelfCheck{}, partyline.Errorf(partyline.ErrUnavailable, "voice is not running")
	}
	return m.selfCheck(&v.opts), nil
}

// shutdown closes every room hosted here and everything Run opened.
func (v *Service) shutdown(m *media) {
	v.media.Store(nil)
	v.mu.Lock()
	rooms := make([]*room, 0, len(v.rooms))
	for _, r := range v.rooms {
		rooms = append(rooms, r)
	}
	clear(v.bindings)
	v.mu.Unlock()
	for _, r := range rooms {
		r.post(func() { r.closeAll(ReasonShutdown) })
	}
	v.roomWG.Wait()
	v.gmu.Lock()
	v.stopping = true
	v.gmu.Unlock()
	v.wg.Wait()
	v.pmu.Lock()
	for rid, ch := range v.pending {
		ch <- relayReply{RID: rid, Code: "unavailable", Message: "voice is shutting down"}
		delete(v.pending, rid)
	}
	v.pmu.Unlock()
	m.close()
}

// goTracked runs f on a goroutine that Run waits for. It reports false,
// and runs nothing, once Run is shutting down.
func (v *Service) goTracked(f func()) bool {
	v.gmu.Lock()
	if v.stopping {
		v.gmu.Unlock()
		return false
	}
	v.wg.Add(1)
	v.gmu.Unlock()
	go func() {
		defer v.wg.Done()
		f()
	}()
	return true
}

// bgCtx is the context of work that outlives a request: publications and
// node messages. It is bounded, and not cancelled by Run's end, so the
// voice.left of a shutdown still goes out.
func (v *Service) bgCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), v.opts.RelayTimeout)
}

// refresh keeps this node's placements alive and drops what depends on
// dead nodes.
func (v *Service) refresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, v.opts.RefreshInterval)
	defer cancel()
	v.mu.Lock()
	hosted := make([]string, 0, len(v.rooms))
	rooms := make([]*room, 0, len(v.rooms))
	for id, r := range v.rooms {
		hosted = append(hosted, id)
		rooms = append(rooms, r)
	}
	var remote []*binding
	for _, b := range v.bindings {
		if b.media != v.nodeID && b.media != "" {
			remote = append(remote, b)
		}
	}
	v.mu.Unlock()

	if len(hosted) > 0 {
		lost, err := v.opts.Placement.Refresh(ctx, v.nodeID, hosted)
		if err != nil {
			v.log.Warn("voice: refresh placements failed", "err", err)
		}
		for _, id := range lost {
			v.mu.Lock()
			r := v.rooms[id]
			v.mu.Unlock()
			if r != nil {
				v.log.Warn("voice: lost the placement of a hosted room", "room", id)
				r.post(func() { r.closeAll(ReasonMoved) })
			}
		}
	}
	if len(rooms) == 0 && len(remote) == 0 {
		return
	}
	nodes, err := v.node.Nodes(ctx)
	if err != nil {
		v.log.Warn("voice: list nodes failed", "err", err)
		return
	}
	live := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		live[n] = true
	}
	for _, r := range rooms {
		r.post(func() { r.dropOrphans(live) })
	}
	for _, b := range remote {
		host, err := v.opts.Placement.Lookup(ctx, b.room)
		if err != nil {
			continue
		}
		if live[b.media] && host == b.media {
			continue
		}
		if v.unbind(b.session.ID(), b.room) {
			v.log.Info("voice: media node lost", "room", b.room, "media", b.media, "session", b.session.ID())
			v.publishLeftFor(b.room, b.session.User(), ReasonNodeLost)
		}
	}
}

// publishLeftFor publishes voice.left for a user whose media node is gone;
// the participant list is unknown then and left out.
func (v *Service) publishLeftFor(roomID, user, reason string) {
	data, _ := json.Marshal(roomEvent{User: user, Reason: reason})
	ctx, cancel := v.bgCtx()
	defer cancel()
	if _, err := v.node.Publish(ctx, channelOf(roomID), "", KindLeft, user, data); err != nil {
		v.log.Warn("voice: publish voice.left failed", "room", roomID, "err", err)
	}
}

func channelOf(room string) string { return wire.NSVoice + ":" + room }
