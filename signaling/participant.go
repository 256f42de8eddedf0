package signaling

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/realtime/wire"
	"github.com/partyline/partyline/signaling/internal/srtpdirect"
)

// maxOfferBytes bounds an offer. Every participant who ever joined while
// someone was in the room leaves an inactive m-line in that someone's
// session; a session that outgrows the frame limit is removed with reason
// "renegotiate", and its client rejoins for a fresh one.
const maxOfferBytes = 56 << 10

// participant is one member of a voice room with its PeerConnection.
// Fields under "actor" are touched only by the room's actor.
type participant struct {
	room    *room
	session string
	user    string
	origin  string // the node holding the participant's WebSocket
	pc      *webrtc.PeerConnection

	// actor
	gone        bool
	selfMuted   bool
	serverMuted bool
	hears       map[*participant]*downlink // publisher -> its track in this session
	offerOut    bool                       // an offer waits for its answer
	offered     []*downlink                // the streams in that offer
	needOffer   bool                       // something changed while it waited
	offers      int
	pendingICE  []webrtc.ICECandidateInit // gathered before the first offer went out
	uplink      bool                      // the uplink track arrived
	connected   bool                      // ICE connected at least once
	lostTimer   *time.Timer               // ICE down; removal pending
	joinTimer   *time.Timer               // not connected yet; removal pending

	// The packet path.
	muted    atomic.Bool                 // drop this participant's packets
	fwdMu    sync.Mutex                  // one forward at a time (Pion's reader, the direct reader)
	received recvStats                   // the uplink's, under fwdMu
	rrSSRC   uint32                      // the SSRC the node's receiver reports come from
	fanout   atomic.Pointer[[]*downlink] // the subscribers of this publisher
	onUDP    atomic.Bool                 // its ICE pair is UDP: Pion's path writes to it without the queue
	direct   *srtpdirect.Session         // the direct path (direct.go)
	dfw      []forwarder                 // the direct path's scratch, one per reader of the port
	downs    atomic.Pointer[[]*downlink] // this subscriber's streams, for its sender reports
	queue    chan outPacket              // packets for this subscriber over ICE-TCP
	done     chan struct{}               // closed when the participant is removed
	level    levelMeter
	outbox   serialQueue // messages to a client on another node
}

// newParticipant builds the participant's PeerConnection: a recvonly
// transceiver for its microphone first, so the first m-line of every
// offer is the client's uplink.
func (r *room) newParticipant(req *voiceReq) (*participant, error) {
	m := r.v.media.Load()
	if m == nil {
		return nil, partyline.Errorf(partyline.ErrUnavailable, "voice is not running")
	}
	direct := srtpdirect.NewSession(m.dc, r.v.log.With("room", r.id, "session", req.Session))
	pc, err := m.newPeerConnection(direct)
	if err != nil {
		return nil, errors.Join(errors.New("signaling: new PeerConnection"), err)
	}
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		_ = pc.Close()
		return nil, errors.Join(errors.New("signaling: add the uplink transceiver"), err)
	}
	p := &participant{
		room:    r,
		session: req.Session,
		user:    req.User,
		origin:  req.Origin,
		pc:      pc,
		hears:   map[*participant]*downlink{},
		queue:   make(chan outPacket, r.v.opts.QueuePackets),
		rrSSRC:  rand.Uint32(),
		done:    make(chan struct{}),
		direct:  direct,
		dfw:     m.fws,
	}
	p.outbox.v = r.v
	p.level.init(r.v.opts.SpeakingLevel)
	p.fanout.Store(&[]*downlink{})
	p.downs.Store(&[]*downlink{})

	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		init := c.ToJSON()
		r.post(func() { r.localCandidate(p, init) })
	})
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		r.post(func() { r.iceState(p, s) })
	})
	pc.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(p.selectedPair)
	pc.SCTP().Transport().OnStateChange(direct.DTLSState)
	pc.OnTrack(func(t *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		if t.Kind() != webrtc.RTPCodecTypeAudio {
			return
		}
		r.post(func() { r.gotUplink(p, t, recv) })
	})
	return p, nil
}

// start begins the participant's writer and its connect deadline.
func (p *participant) start() {
	r := p.room
	r.v.goTracked(p.writeLoop)
	p.scheduleReports()
	p.joinTimer = time.AfterFunc(r.v.opts.ConnectTimeout, func() {
		r.post(func() {
			if !p.gone && !p.connected {
				r.remove(p, ReasonConnectTimeout, "")
			}
		})
	})
}

// stop ends the participant's packet path and closes its PeerConnection
// in the background (a close waits for Pion's goroutines).
func (p *participant) stop() {
	for _, t := range []*time.Timer{p.joinTimer, p.lostTimer} {
		if t != nil {
			t.Stop()
		}
	}
	close(p.done)
	p.direct.Stop()
	pc := p.pc
	if !p.room.v.goTracked(func() { _ = pc.Close() }) {
		_ = pc.Close()
	}
}

func (p *participant) info() participantInfo {
	return participantInfo{User: p.user, Muted: p.selfMuted || p.serverMuted, ServerMuted: p.serverMuted}
}

func (p *participant) applyMute() { p.muted.Store(p.selfMuted || p.serverMuted) }

// send sends a message to the participant's client, in order.
func (p *participant) send(msg []byte) {
	v := p.room.v
	if p.origin == v.nodeID {
		v.deliverLocal(p.session, p.room.id, msg)
		return
	}
	out := relayOut{Session: p.session, Room: p.room.id, Msg: msg}
	p.outbox.push(func() {
		ctx, cancel := v.bgCtx()
		defer cancel()
		if err := v.node.SendNode(ctx, p.origin, opOut, out); err != nil {
			v.log.Debug("voice: relay to the client's node failed", "origin", p.origin, "err", err)
		}
	})
}

// unbindOrigin tells the client's node that the session is out of the
// room, after every message sent before.
func (p *participant) unbindOrigin() {
	v := p.room.v
	if p.origin == v.nodeID {
		v.unbind(p.session, p.room.id)
		return
	}
	u := relayUnbind{Session: p.session, Room: p.room.id}
	p.outbox.push(func() {
		ctx, cancel := v.bgCtx()
		defer cancel()
		_ = v.node.SendNode(ctx, p.origin, opUnbind, u)
	})
}

type offerMsg struct {
	Type string `json:"type"`
	Room string `json:"room"`
	SDP  string `json:"sdp"`
}

type iceMsg struct {
	Type      string                  `json:"type"`
	Room      string                  `json:"room"`
	Candidate webrtc.ICECandidateInit `json:"candidate"`
}

// negotiate sends p a new offer, or marks that one is due once the
// answer to the outstanding one is in: offers never overlap.
func (r *room) negotiate(p *participant) {
	if p.gone {
		return
	}
	if p.offerOut {
		p.needOffer = true
		return
	}
	p.needOffer = false
	offer, err := p.pc.CreateOffer(nil)
	if err == nil {
		err = p.pc.SetLocalDescription(offer)
	}
	if err != nil {
		if errors.Is(err, webrtc.ErrConnectionClosed) {
			// The client closed its end; its ICE state change is on its way.
			r.remove(p, ReasonICE, "")
			return
		}
		r.v.log.Error("voice: create offer failed", "room", r.id, "session", p.session, "err", err)
		r.remove(p, ReasonError, "")
		return
	}
	if len(offer.SDP) > maxOfferBytes {
		r.remove(p, ReasonRenegotiate, "")
		return
	}
	msg, _ := json.Marshal(offerMsg{Type: wire.TypeVoiceOffer, Room: r.id, SDP: offer.SDP})
	p.offerOut = true
	p.offered = p.offered[:0]
	for _, dl := range p.hears {
		p.offered = append(p.offered, dl)
	}
	if p.offers > 0 {
		r.v.metrics.renegotiations.Inc()
	}
	p.offers++
	p.send(msg)
	for _, c := range p.pendingICE {
		p.sendCandidate(c)
	}
	p.pendingICE = nil
}

// answer applies the client's answer to the outstanding offer. An answer
// that does not parse or does not fit the offer is refused and leaves the
// offer outstanding, so the client can still answer it properly; the
// SDP is parsed first, so garbage never reaches the PeerConnection.
func (r *room) answer(p *participant, raw string) error {
	if !p.offerOut {
		return partyline.Errorf(partyline.ErrInvalid, "voice.answer: no offer is waiting for an answer")
	}
	if raw == "" {
		return partyline.Errorf(partyline.ErrInvalid, "voice.answer needs sdp")
	}
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(raw); err != nil {
		return partyline.Errorf(partyline.ErrInvalid, "voice.answer: bad SDP: %v", err)
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: raw}); err != nil {
		return partyline.Errorf(partyline.ErrInvalid, "voice.answer: SDP does not answer the offer: %v", err)
	}
	p.direct.Answered(&parsed)
	p.offerOut = false
	// The streams the offer carried are bound now: the direct path may
	// write them.
	for _, dl := range p.offered {
		dl.ready.Store(true)
	}
	p.offered = p.offered[:0]
	if p.needOffer {
		r.negotiate(p)
	}
	return nil
}

func (p *participant) addCandidate(raw json.RawMessage) error {
	if len(raw) == 0 {
		return partyline.Errorf(partyline.ErrInvalid, "voice.ice needs candidate")
	}
	var c webrtc.ICECandidateInit
	if err := json.Unmarshal(raw, &c); err != nil {
		return partyline.Errorf(partyline.ErrInvalid, "voice.ice: malformed candidate")
	}
	if p.pc.RemoteDescription() == nil {
		return partyline.Errorf(partyline.ErrInvalid, "voice.ice: no answer yet")
	}
	if err := p.pc.AddICECandidate(c); err != nil {
		return partyline.Errorf(partyline.ErrInvalid, "voice.ice: bad candidate: %v", err)
	}
	return nil
}

// localCandidate sends a gathered candidate, or holds it until the first
// offer is out: a candidate must never reach the client before an offer.
func (r *room) localCandidate(p *participant, c webrtc.ICECandidateInit) {
	if p.gone {
		return
	}
	if p.offers == 0 {
		p.pendingICE = append(p.pendingICE, c)
		return
	}
	p.sendCandidate(c)
}

func (p *participant) sendCandidate(c webrtc.ICECandidateInit) {
	msg, _ := json.Marshal(iceMsg{Type: wire.TypeVoiceICE, Room: p.room.id, Candidate: c})
	p.send(msg)
}

// iceState removes a participant whose ICE stays down for
// DisconnectTimeout.
func (r *room) iceState(p *participant, s webrtc.ICEConnectionState) {
	if p.gone {
		return
	}
	switch s {
	case webrtc.ICEConnectionStateConnected, webrtc.ICEConnectionStateCompleted:
		p.connected = true
		if p.lostTimer != nil {
			p.lostTimer.Stop()
			p.lostTimer = nil
		}
	case webrtc.ICEConnectionStateClosed:
		// The client closed its end (DTLS close_notify): it cannot come back
		// on this session.
		r.remove(p, ReasonICE, "")
	case webrtc.ICEConnectionStateDisconnected, webrtc.ICEConnectionStateFailed:
		if p.lostTimer != nil || !p.connected {
			return // the connect deadline covers a session that never connected
		}
		p.lostTimer = time.AfterFunc(r.v.opts.DisconnectTimeout, func() {
			r.post(func() {
				if !p.gone && p.lostTimer != nil {
					r.remove(p, ReasonICE, "")
				}
			})
		})
	}
}

// gotUplink starts forwarding the participant's microphone.
func (r *room) gotUplink(p *participant, t *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	if p.gone || p.uplink {
		return
	}
	p.uplink = true
	levelID := 0
	for _, h := range recv.GetParameters().HeaderExtensions {
		if h.URI == audioLevelURI {
			levelID = h.ID
		}
	}
	m := r.v.metrics
	p.direct.UplinkKnown(uint32(t.SSRC()), &uplink{p: p, levelID: levelID, fws: p.dfw})
	r.v.goTracked(func() { p.readUplink(t, levelID, m) })
	r.v.goTracked(func() { p.readRTCP(recv) })
}

// readRTCP reads the RTCP of the participant's uplink until it ends, and
// notes its sender reports for the node's receiver reports.
func (p *participant) readRTCP(recv *webrtc.RTPReceiver) {
	for {
		pkts, _, err := recv.ReadRTCP()
		if err != nil {
			return
		}
		now := time.Now()
		for _, pk := range pkts {
			if sr, ok := pk.(*rtcp.SenderReport); ok {
				p.fwdMu.Lock()
				p.received.senderReport(sr, now)
				p.fwdMu.Unlock()
			}
		}
	}
}

// link adds pub's audio to sub's session.
func (r *room) link(pub, sub *participant) error {
	track, err := webrtc.NewTrackLocalStaticRTP(opusCodec, "a-"+pub.session, pub.user)
	if err != nil {
		return err
	}
	tr, err := sub.pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return err
	}
	dl := &downlink{sub: sub, track: track, sender: tr.Sender()}
	if enc := dl.sender.GetParameters().Encodings; len(enc) > 0 {
		dl.ssrc = uint32(enc[0].SSRC)
	}
	sub.hears[pub] = dl
	sub.downs.Store(ptr(append(slices.Clone(*sub.downs.Load()), dl)))
	pub.fanout.Store(ptr(append(slices.Clone(*pub.fanout.Load()), dl)))
	sender := dl.sender
	r.v.goTracked(func() { drainSenderRTCP(sender) })
	return nil
}

// unlink removes pub's audio from sub's session.
func (r *room) unlink(pub, sub *participant) {
	dl := sub.hears[pub]
	if dl == nil {
		return
	}
	delete(sub.hears, pub)
	sub.downs.Store(ptr(slices.DeleteFunc(slices.Clone(*sub.downs.Load()), func(d *downlink) bool { return d == dl })))
	pub.fanout.Store(ptr(slices.DeleteFunc(slices.Clone(*pub.fanout.Load()), func(d *downlink) bool { return d == dl })))
	if !sub.gone {
		if err := sub.pc.RemoveTrack(dl.sender); err != nil {
			r.v.log.Debug("voice: remove track failed", "room", r.id, "err", err)
		}
	}
}

// drainSenderRTCP reads the RTCP of a sender (receiver reports from the
// subscriber) so its interceptors work; it ends when the sender stops.
func drainSenderRTCP(s *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := s.Read(buf); err != nil {
			return
		}
	}
}

func ptr[T any](v T) *T { return &v }
