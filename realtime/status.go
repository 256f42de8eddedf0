package realtime

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/realtime/wire"
)

// A user's online presence and the offline status.
//
// Every connection of a user joins the presence key onlineKey(user), so
// the Presence counts the user's connections across nodes. The node that
// closes the last one records in the Presence that the user's offline is
// due OfflineDelay later (ScheduleOffline), and arms a local timer as the
// fast path. The record is shared: whoever claims it first, that timer or
// the presence loop of any node (Run, every ReapInterval), checks that the
// user is still gone and publishes offline. A claim is atomic, so offline
// goes out once per record, and the record outlives its node, so a drain
// or a crash after the last connection closed does not leave the user
// online. A node that dies with connections leaves their entries to
// expire; the reaper (Presence.Reap) reports the user's last one, and the
// node that gets the departure publishes offline the same way.

// onlineKey is the presence key that counts a user's connections across
// nodes. It is not a protocol channel, so no client can subscribe to it.
func onlineKey(user string) string { return onlinePrefix + user }

const onlinePrefix = "online/"

// pendingOffline is a local offline timer of a user.
type pendingOffline struct {
	timer *time.Timer
	// recorded is false when ScheduleOffline failed: with no record to
	// claim, the timer announces offline itself.
	recorded bool
}

// joinOnline counts the connection toward the user's online presence and
// reports whether it is their first anywhere. The user's connections are
// capped at MaxConnsPerUser across the nodes of the Presence: a
// connection over it is not counted and
// gets an error wrapping ErrLimitExceeded. Any other failure is logged,
// and the connection goes on without online presence.
func (n *Node) joinOnline(ctx context.Context, c *Conn) (first bool, err error) {
	m := Member{ConnID: c.id, User: c.user, Node: n.opts.NodeID}
	first, err = n.opts.Presence.JoinAtMost(ctx, onlineKey(c.user), m, n.opts.MaxConnsPerUser)
	if errors.Is(err, partyline.ErrLimitExceeded) {
		return false, err
	}
	if err != nil {
		c.logger().Warn("online presence join failed", "err", err)
		return false, nil
	}
	return first, nil
}

// userArrived turns the user's status online when joinOnline found the
// connection their first anywhere.
func (n *Node) userArrived(ctx context.Context, c *Conn, first bool) {
	if !first {
		return
	}
	st, ok, err := n.opts.Presence.GetStatus(ctx, c.user)
	if err == nil && (!ok || st.Status == wire.StatusOffline) {
		if err := n.setStatus(ctx, c.user, Status{Status: wire.StatusOnline, TS: time.Now().UnixMilli()}); err != nil {
			c.logger().Warn("status online failed", "err", err)
		}
	}
}

// userGone removes the connection from the user's online presence. After
// their last connection anywhere, it records that their offline is due
// OfflineDelay later, so a quick reconnect does not flap it, and arms the
// local timer that claims the record when it is due.
func (n *Node) userGone(ctx context.Context, c *Conn) {
	m := Member{ConnID: c.id, User: c.user, Node: n.opts.NodeID}
	last, err := n.opts.Presence.Leave(ctx, onlineKey(c.user), m)
	if err != nil || !last {
		return // on an error, the entry expires and the reaper reports it
	}
	recorded := true
	if err := n.opts.Presence.ScheduleOffline(ctx, c.user, n.opts.OfflineDelay); err != nil {
		n.opts.Logger.Warn("offline schedule failed", "user", c.user, "err", err)
		recorded = false
	}
	n.armOffline(c.user, n.opts.OfflineDelay, recorded)
}

// armOffline (re)starts the user's local offline timer, unless Run has
// ended.
func (n *Node) armOffline(user string, d time.Duration, recorded bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.offlineStopped {
		return
	}
	if p := n.offline[user]; p != nil {
		p.timer.Stop()
	}
	p := &pendingOffline{recorded: recorded}
	p.timer = time.AfterFunc(d, func() { n.fireOffline(user, p) })
	n.offline[user] = p
}

// cancelOfflineLocked stops the user's local timer: they are back on this node.
// The shared record stays; its claim finds them back and does nothing.
// n.mu is held.
func (n *Node) cancelOfflineLocked(user string) {
	if p := n.offline[user]; p != nil {
		p.timer.Stop()
		delete(n.offline, user)
	}
}

// stopOffline stops the local timers for good and waits for those already
// firing. Run calls it last; the records stay for the other nodes.
func (n *Node) stopOffline() {
	n.mu.Lock()
	n.offlineStopped = true
	for _, p := range n.offline {
		p.timer.Stop()
	}
	n.offline = map[string]*pendingOffline{}
	n.mu.Unlock()
	n.offlineFiring.Wait()
}

// fireOffline runs when the user's local timer p ends: it claims the
// user's record and announces offline when it got it. A record not due yet
// (a later ScheduleOffline moved it, or this clock runs ahead of the
// Presence's) re-arms the timer for the rest of the wait.
func (n *Node) fireOffline(user string, p *pendingOffline) {
	n.mu.Lock()
	if n.offlineStopped || n.offline[user] != p {
		n.mu.Unlock()
		return // stopped, cancelled or replaced meanwhile
	}
	delete(n.offline, user)
	n.offlineFiring.Add(1) // under mu, before stopOffline can Wait
	n.mu.Unlock()
	defer n.offlineFiring.Done()

	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	if p.recorded {
		claimed, wait, err := n.opts.Presence.ClaimOffline(ctx, user)
		switch {
		case err != nil:
			// The record stays, and a presence loop claims it.
			n.opts.Logger.Warn("offline claim failed", "user", user, "err", err)
			return
		case wait > 0:
			n.armOffline(user, wait, true)
			return
		case !claimed:
			return // another node claimed it
		}
	}
	n.offlineClaimed(ctx, user)
}

// statusTimeout bounds the Presence calls of one offline claim or
// announcement, and of one round of the presence loop.
const statusTimeout = 5 * time.Second

// sweepOffline claims the offline records that are due, whichever node
// made them, and announces each.
func (n *Node) sweepOffline(ctx context.Context) {
	users, err := n.opts.Presence.ClaimDueOffline(ctx)
	if err != nil {
		n.opts.Logger.Warn("offline sweep failed", "err", err)
	}
	for _, user := range users {
		n.offlineClaimed(ctx, user)
	}
}

// offlineClaimed announces offline for a user whose record this node
// claimed (or whose last connection the reaper reported). When that
// fails, it records the user again, due at once, so a presence loop
// retries: the claim took the only record. The announcement and the
// record each get a deadline of their own, not what is left of ctx: a
// round claims many users at once, and under load a shared deadline would
// pass partway through it, failing the rest and losing their records.
func (n *Node) offlineClaimed(ctx context.Context, user string) {
	base := context.WithoutCancel(ctx)
	actx, cancel := context.WithTimeout(base, statusTimeout)
	err := n.announceOffline(actx, user)
	cancel()
	if err == nil {
		return
	}
	n.opts.Logger.Warn("status offline failed", "user", user, "err", err)
	rctx, cancel := context.WithTimeout(base, statusTimeout)
	defer cancel()
	if err := n.opts.Presence.ScheduleOffline(rctx, user, 0); err != nil {
		n.opts.Logger.Warn("offline reschedule failed", "user", user, "err", err)
	}
}

// announceOffline publishes the user's offline status unless they have a
// connection on some node again or their status is offline already.
func (n *Node) announceOffline(ctx context.Context, user string) error {
	members, err := n.opts.Presence.Members(ctx, onlineKey(user))
	if err != nil || len(members) > 0 {
		return err
	}
	st, ok, err := n.opts.Presence.GetStatus(ctx, user)
	if err != nil {
		return err
	}
	if ok && st.Status == wire.StatusOffline {
		return nil
	}
	if err := n.setStatus(ctx, user, Status{Status: wire.StatusOffline, TS: time.Now().UnixMilli()}); err != nil {
		return err
	}
	// A connection that arrived meanwhile may have read the status before
	// it turned offline, and so left it; turn it back online.
	members, err = n.opts.Presence.Members(ctx, onlineKey(user))
	if err == nil && len(members) > 0 {
		st, ok, err := n.opts.Presence.GetStatus(ctx, user)
		if err == nil && ok && st.Status == wire.StatusOffline {
			if err := n.setStatus(ctx, user, Status{Status: wire.StatusOnline, TS: time.Now().UnixMilli()}); err != nil {
				n.opts.Logger.Warn("status online failed", "user", user, "err", err)
			}
		}
	}
	return nil
}

// presenceLoop runs every ReapInterval until ctx is done: it claims the
// due offline records, and it announces the
// departures of users whose node died: a leave event on the channel, and
// for their last connection anywhere, the offline status, exactly as if
// they had left.
func (n *Node) presenceLoop(ctx context.Context) {
	t := time.NewTicker(n.opts.ReapInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A claim that the Presence made is the only one, so a round runs
		// to its end even when ctx ends meanwhile.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statusTimeout)
		n.reap(rctx)
		n.rejoin(rctx)
		n.sweepOffline(rctx)
		cancel()
	}
}

// rejoin announces the users a renewal put back in presence after their
// entry was gone (see Presence.Rejoined): a join event, or, when their
// status went offline meanwhile, online again.
func (n *Node) rejoin(ctx context.Context) {
	for _, d := range n.opts.Presence.Rejoined() {
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statusTimeout)
		if user, ok := strings.CutPrefix(d.Channel, onlinePrefix); ok {
			st, ok, err := n.opts.Presence.GetStatus(ectx, user)
			if err == nil && ok && st.Status == wire.StatusOffline {
				if err := n.setStatus(ectx, user, Status{Status: wire.StatusOnline, TS: time.Now().UnixMilli()}); err != nil {
					n.opts.Logger.Warn("status online failed", "user", user, "err", err)
				}
			}
		} else if presenceEvents(d.Channel) {
			_ = n.PublishEvent(ectx, d.Channel, wire.EventJoin, "", d.User, nil)
		}
		cancel()
	}
}

// reap announces the departures that one Reap finds.
func (n *Node) reap(ctx context.Context) {
	deps, err := n.opts.Presence.Reap(ctx)
	if err != nil {
		n.opts.Logger.Warn("presence reap failed", "err", err)
	}
	for _, d := range deps {
		if user, ok := strings.CutPrefix(d.Channel, onlinePrefix); ok {
			n.offlineClaimed(ctx, user)
			continue
		}
		if presenceEvents(d.Channel) {
			ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statusTimeout)
			_ = n.PublishEvent(ectx, d.Channel, wire.EventLeave, "", d.User, nil)
			cancel()
		}
	}
}
