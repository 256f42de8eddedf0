package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/realtime/wire"
)

// Node-to-node ops. A gateway node relays its sessions' voice requests to
// the room's media node (opRequest); the media node answers requests that
// have a reply (opReply), sends what is meant for a client (opOut) in
// order, and tells the gateway node when it removed a participant on its
// own, so the session may join again (opUnbind).
const (
	opRequest = "voice.req"
	opReply   = "voice.rep"
	opOut     = "voice.out"
	opUnbind  = "voice.unbind"
)

// typeClose is the internal request of a session whose socket closed.
const typeClose = "voice.close"

// errNodeGone marks a relay to a node that is not alive. Clients see it
// as unavailable.
var errNodeGone = fmt.Errorf("voice media node is gone: %w", partyline.ErrUnavailable)

// voiceReq is a voice request on its way to the room's media node.
type voiceReq struct {
	RID       uint64          `json:"rid,omitempty"`
	Type      string          `json:"type"`
	Room      string          `json:"room"`
	Session   string          `json:"session"`
	User      string          `json:"user"`
	Origin    string          `json:"origin"`
	Target    string          `json:"target,omitempty"`
	Muted     *bool           `json:"muted,omitempty"`
	SDP       string          `json:"sdp,omitempty"`
	Candidate json.RawMessage `json:"candidate,omitempty"`
}

// relayReply answers a relayed request: Result on success, or the wire
// error Code and Message.
type relayReply struct {
	RID     uint64          `json:"rid"`
	Result  json.RawMessage `json:"result,omitempty"`
	Code    string          `json:"code,omitempty"`
	Message string          `json:"message,omitempty"`
}

// relayOut carries a message for a client to its node.
type relayOut struct {
	Session string          `json:"session"`
	Room    string          `json:"room"`
	Msg     json.RawMessage `json:"msg"`
}

// relayUnbind tells a gateway node its session left the room.
type relayUnbind struct {
	Session string `json:"session"`
	Room    string `json:"room"`
}

// send serves r on host, here or over the broker, and returns the result
// encoded as a JSON object.
func (v *Service) send(ctx context.Context, host string, r *voiceReq) (json.RawMessage, error) {
	if host == v.nodeID {
		res, err := v.serveMedia(ctx, r)
		if err != nil {
			return nil, err
		}
		return encodeResult(res)
	}
	v.metrics.relayed.Inc()
	r.RID = v.nextRID.Add(1)
	ch := make(chan relayReply, 1)
	v.pmu.Lock()
	v.pending[r.RID] = ch
	v.pmu.Unlock()
	defer func() {
		v.pmu.Lock()
		delete(v.pending, r.RID)
		v.pmu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(ctx, v.opts.RelayTimeout)
	defer cancel()
	if err := v.node.SendNode(ctx, host, opRequest, r); err != nil {
		if errors.Is(err, partyline.ErrNotFound) {
			return nil, partyline.Errorf(errNodeGone, "voice room %s: its node %s is gone", r.Room, host)
		}
		return nil, partyline.Errorf(partyline.ErrUnavailable, "relay %s to node %s: %v", r.Type, host, err)
	}
	select {
	case rep := <-ch:
		if rep.Code != "" {
			return nil, partyline.Errorf(kindOf(rep.Code), "%s", rep.Message)
		}
		return rep.Result, nil
	case <-ctx.Done():
		return nil, partyline.Errorf(partyline.ErrUnavailable, "voice room %s: node %s did not answer", r.Room, host)
	}
}

func encodeResult(res any) (json.RawMessage, error) {
	if res == nil {
		return json.RawMessage(`{}`), nil
	}
	return json.Marshal(res)
}

// onRelayRequest serves a request relayed by a gateway node. It runs on
// the broker's receive path: answer and ice go straight into the room's
// mailbox, keeping their order; the rest run on goroutines of their own.
func (v *Service) onRelayRequest(from string, body json.RawMessage) {
	var r voiceReq
	if err := json.Unmarshal(body, &r); err != nil {
		v.log.Warn("voice: bad relayed request", "from", from, "err", err)
		return
	}
	switch r.Type {
	case wire.TypeVoiceAnswer, wire.TypeVoiceICE, typeClose:
		v.signalMedia(&r)
		return
	}
	v.goTracked(func() {
		ctx, cancel := v.bgCtx()
		defer cancel()
		rep := relayReply{RID: r.RID}
		res, err := v.serveMedia(ctx, &r)
		if err == nil {
			rep.Result, err = encodeResult(res)
		}
		if err != nil {
			rep.Code, rep.Message = wireError(err)
			if rep.Code == wire.CodeInternal {
				v.log.Error("voice: relayed request failed", "type", r.Type, "room", r.Room, "from", from, "err", err)
			}
		}
		if err := v.node.SendNode(ctx, r.Origin, opReply, rep); err != nil {
			v.log.Warn("voice: reply to a relayed request failed", "origin", r.Origin, "err", err)
		}
	})
}

func (v *Service) onRelayReply(from string, body json.RawMessage) {
	var rep relayReply
	if err := json.Unmarshal(body, &rep); err != nil {
		v.log.Warn("voice: bad relayed reply", "from", from, "err", err)
		return
	}
	v.pmu.Lock()
	ch := v.pending[rep.RID]
	delete(v.pending, rep.RID)
	v.pmu.Unlock()
	if ch != nil {
		ch <- rep
	}
}

func (v *Service) onRelayOut(from string, body json.RawMessage) {
	var o relayOut
	if err := json.Unmarshal(body, &o); err != nil {
		v.log.Warn("voice: bad relayed message", "from", from, "err", err)
		return
	}
	v.deliverLocal(o.Session, o.Room, o.Msg)
}

func (v *Service) onRelayUnbind(from string, body json.RawMessage) {
	var u relayUnbind
	if err := json.Unmarshal(body, &u); err != nil {
		v.log.Warn("voice: bad relayed unbind", "from", from, "err", err)
		return
	}
	v.unbind(u.Session, u.Room)
}

// wireError maps err to its wire code and the message a client may see.
func wireError(err error) (code, msg string) {
	code = realtime.ErrorCode(err)
	if code == wire.CodeInternal {
		return code, "internal error"
	}
	return code, err.Error()
}

// kinds maps the wire error codes back to their partyline error kinds.
var kinds = map[string]error{
	wire.CodeBadRequest:    partyline.ErrInvalid,
	wire.CodeUnauthorized:  partyline.ErrUnauthorized,
	wire.CodeForbidden:     partyline.ErrForbidden,
	wire.CodeNotFound:      partyline.ErrNotFound,
	wire.CodeConflict:      partyline.ErrConflict,
	wire.CodeRateLimited:   partyline.ErrRateLimited,
	wire.CodeTooLarge:      partyline.ErrTooLarge,
	wire.CodeLimitExceeded: partyline.ErrLimitExceeded,
	wire.CodeUnavailable:   partyline.ErrUnavailable,
}

// kindOf maps a wire error code back to its partyline error kind.
func kindOf(code string) error {
	if kind, ok := kinds[code]; ok {
		return kind
	}
	return errors.New("internal error")
}

func isKind(err, kind error) bool { return errors.Is(err, kind) }
