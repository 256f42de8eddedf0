package signaling_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime/wire"
)

// loopbackAPI is the WebRTC API of a test peer: loopback only, no mDNS,
// UDP over IPv4, Opus with the audio level extension.
func loopbackAPI(t testing.TB) *webrtc.API {
	t.Helper()
	return loopbackAPIOn(t, webrtc.NetworkTypeUDP4)
}

// loopbackAPIOn is loopbackAPI on the given network: NetworkTypeTCP4 makes
// a peer that can reach the server over ICE-TCP only. Each of also
// changes the settings.
func loopbackAPIOn(t testing.TB, network webrtc.NetworkType, also ...func(*webrtc.SettingEngine)) *webrtc.API {
	t.Helper()
	se := webrtc.SettingEngine{}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	se.LoggerFactory = lf
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{network})
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(n string) bool { return n == "lo" })
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	for _, f := range also {
		f(&se)
	}
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType:        111,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatalf("register Opus: %v", err)
	}
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: "urn:ietf:params:rtp-hdrext:ssrc-audio-level"}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatalf("register audio level: %v", err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		t.Fatalf("RTCP reports: %v", err)
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir))
}

// peer is a voice participant in the test process: a client on the
// gateway and a Pion PeerConnection that answers every offer and sends
// synthetic Opus RTP carrying its user id and an audio level.
type peer struct {
	t    testing.TB
	c    *client
	room string
	pc   *webrtc.PeerConnection
	mic  *webrtc.TrackLocalStaticRTP
	tx   *webrtc.RTPSender

	level atomic.Int32 // the audio level sent, -dBov
	send  atomic.Bool  // whether packets go out

	mu        sync.Mutex
	recv      map[string]*recvStat // by publisher user (the stream id)
	reported  map[string]uint32    // packet count of the last sender report, by publisher user
	rr        rtcp.ReceptionReport // the last receiver report on the peer's microphone
	offers    []string
	answered  int
	sigErr    error
	firstRTP  time.Time
	stopTx    chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	stopOnce  sync.Once
}

// recvStat counts what arrived from one publisher.
type recvStat struct {
	packets int
	last    time.Time
	wrong   int // packets whose payload names another user
}

func newPeer(t testing.TB, api *webrtc.API, c *client) *peer {
	t.Helper()
	p := &peer{t: t, c: c, recv: map[string]*recvStat{}, reported: map[string]uint32{}, stopTx: make(chan struct{})}
	p.level.Store(30)
	p.send.Store(true)
	p.setup(api)
	p.wg.Add(2)
	go p.signal()
	go p.transmit()
	t.Cleanup(p.close)
	return p
}

// renew replaces the PeerConnection with a fresh one, as a client does
// before it joins again.
func (p *peer) renew(api *webrtc.API) {
	p.mu.Lock()
	old := p.pc
	p.recv = map[string]*recvStat{}
	p.reported = map[string]uint32{}
	p.firstRTP = time.Time{}
	p.mu.Unlock()
	_ = old.Close()
	p.setup(api)
}

// setup makes the peer's PeerConnection with its microphone track.
func (p *peer) setup(api *webrtc.API) {
	t, c := p.t, p.c
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatalf("NewPeerConnection: %v", err)
	}
	mic, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", c.User)
	if err != nil {
		t.Fatalf("NewTrackLocalStaticRTP: %v", err)
	}
	tx, err := pc.AddTrack(mic)
	if err != nil {
		t.Fatalf("AddTrack: %v", err)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			pkts, _, err := tx.ReadRTCP()
			if err != nil {
				return
			}
			for _, pk := range pkts {
				if rr, ok := pk.(*rtcp.ReceiverReport); ok {
					for _, r := range rr.Reports {
						if r.SSRC == uint32(tx.GetParameters().Encodings[0].SSRC) {
							p.mu.Lock()
							p.rr = r
							p.mu.Unlock()
						}
					}
				}
			}
		}
	}()
	pc.OnTrack(func(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		from := tr.StreamID()
		go func() {
			for {
				pkts, _, err := recv.ReadRTCP()
				if err != nil {
					return
				}
				for _, pk := range pkts {
					if sr, ok := pk.(*rtcp.SenderReport); ok && sr.SSRC == uint32(tr.SSRC()) {
						p.mu.Lock()
						p.reported[from] = sr.PacketCount
						p.mu.Unlock()
					}
				}
			}
		}()
		buf := make([]byte, 1500)
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			var pkt rtp.Packet
			if pkt.Unmarshal(buf[:n]) != nil {
				continue
			}
			p.mu.Lock()
			st := p.recv[from]
			if st == nil {
				st = &recvStat{}
				p.recv[from] = st
			}
			st.packets++
			st.last = time.Now()
			if !bytes.HasPrefix(pkt.Payload, []byte("from:"+from+";")) {
				st.wrong++
			}
			if p.firstRTP.IsZero() {
				p.firstRTP = st.last
			}
			p.mu.Unlock()
		}
	})
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		p.mu.Lock()
		room := p.room
		p.mu.Unlock()
		if cand == nil || room == "" {
			return
		}
		c.Write(map[string]any{"type": "voice.ice", "room": room, "candidate": cand.ToJSON()})
	})
	p.mu.Lock()
	p.pc, p.mic, p.tx = pc, mic, tx
	p.mu.Unlock()
}

// conn returns the current PeerConnection and its microphone.
func (p *peer) conn() (*webrtc.PeerConnection, *webrtc.TrackLocalStaticRTP, *webrtc.RTPSender) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pc, p.mic, p.tx
}

// join joins the voice room and returns the ok reply.
func (p *peer) join(room string) wire.Message {
	p.t.Helper()
	p.mu.Lock()
	p.room = room
	p.mu.Unlock()
	return p.c.OK(map[string]any{"type": "voice.join", "room": room})
}

// signal answers every offer and applies every candidate, in order.
func (p *peer) signal() {
	defer p.wg.Done()
	for b := range p.c.voice {
		var m struct {
			Type      string                  `json:"type"`
			Room      string                  `json:"room"`
			SDP       string                  `json:"sdp"`
			Candidate webrtc.ICECandidateInit `json:"candidate"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			p.fail(err)
			continue
		}
		switch m.Type {
		case wire.TypeVoiceOffer:
			p.mu.Lock()
			p.offers = append(p.offers, m.SDP)
			p.mu.Unlock()
			pc, _, _ := p.conn()
			if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.SDP}); err != nil {
				p.fail(fmt.Errorf("set offer: %w", err))
				continue
			}
			ans, err := pc.CreateAnswer(nil)
			if err == nil {
				err = pc.SetLocalDescription(ans)
			}
			if err != nil {
				p.fail(fmt.Errorf("answer: %w", err))
				continue
			}
			p.c.Write(map[string]any{"type": "voice.answer", "room": m.Room, "sdp": ans.SDP})
			p.mu.Lock()
			p.answered++
			p.mu.Unlock()
		case wire.TypeVoiceICE:
			pc, _, _ := p.conn()
			if err := pc.AddICECandidate(m.Candidate); err != nil {
				p.fail(fmt.Errorf("add candidate: %w", err))
			}
		}
	}
}

func (p *peer) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sigErr == nil {
		p.sigErr = err
	}
}

// transmit sends 50 packets a second: 20 ms Opus frames whose payload
// names the sender, with the audio level extension.
func (p *peer) transmit() {
	defer p.wg.Done()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	payload := []byte("from:" + p.c.User + ";" + strings.Repeat("x", 60))
	var seq uint16
	var ts uint32
	extID := 0
	var lastTx *webrtc.RTPSender
	for {
		select {
		case <-p.stopTx:
			return
		case <-tick.C:
		}
		seq++
		ts += 960
		if !p.send.Load() {
			continue
		}
		_, mic, tx := p.conn()
		if tx != lastTx {
			lastTx, extID = tx, 0
		}
		if extID == 0 {
			for _, h := range tx.GetParameters().HeaderExtensions {
				if h.URI == "urn:ietf:params:rtp-hdrext:ssrc-audio-level" {
					extID = h.ID
				}
			}
		}
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: ts}, Payload: payload}
		if extID != 0 {
			lvl := byte(p.level.Load())
			if lvl < 127 {
				lvl |= 0x80 // voice activity
			}
			_ = pkt.Header.SetExtension(uint8(extID), []byte{lvl})
		}
		_ = mic.WriteRTP(pkt)
	}
}

func (p *peer) close() {
	p.closeOnce.Do(func() {
		p.stopMedia()
		p.c.Close() // ends signal
		p.wg.Wait()
	})
}

// stopMedia stops sending and closes the PeerConnection; the WebSocket
// stays open.
func (p *peer) stopMedia() {
	p.stopOnce.Do(func() {
		close(p.stopTx)
		pc, _, _ := p.conn()
		_ = pc.Close()
	})
}

// packetsFrom returns how many packets arrived from user so far.
func (p *peer) packetsFrom(user string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st := p.recv[user]; st != nil {
		return st.packets
	}
	return 0
}

// reportedFrom is the packet count of the last sender report the peer got
// for user's stream.
func (p *peer) reportedFrom(user string) uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reported[user]
}

// receiverReport is the last report the node sent on the peer's
// microphone.
func (p *peer) receiverReport() rtcp.ReceptionReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rr
}

func (p *peer) lastFrom(user string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st := p.recv[user]; st != nil {
		return st.last
	}
	return time.Time{}
}

// senders returns the users whose packets arrived, and the count of
// packets that carried another user's payload.
func (p *peer) senders() (users map[string]int, wrong int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	users = map[string]int{}
	for u, st := range p.recv {
		users[u] = st.packets
		wrong += st.wrong
	}
	return users, wrong
}

func (p *peer) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sigErr
}

func (p *peer) lastOffer() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.offers) == 0 {
		return ""
	}
	return p.offers[len(p.offers)-1]
}

// hearsAll waits until packets from each of users keep arriving.
func (p *peer) hearsAll(t testing.TB, within time.Duration, users ...string) {
	t.Helper()
	base := map[string]int{}
	for _, u := range users {
		base[u] = p.packetsFrom(u)
	}
	testenv.EventuallyWithin(t, within, fmt.Sprintf("%s to hear %v", p.c.User, users), func() bool {
		if err := p.err(); err != nil {
			t.Fatalf("%s: signaling: %v", p.c.User, err)
		}
		for _, u := range users {
			if p.packetsFrom(u) < base[u]+5 {
				return false
			}
		}
		return true
	})
}

// assertLoopbackPair checks that the selected ICE pair is 127.0.0.1 on
// both sides, as seen from the peer.
func (p *peer) assertLoopbackPair(t testing.TB) {
	t.Helper()
	var pair *webrtc.ICECandidatePair
	testenv.Eventually(t, p.c.User+"'s selected candidate pair", func() bool {
		var err error
		_, _, tx := p.conn()
		pair, err = tx.Transport().ICETransport().GetSelectedCandidatePair()
		return err == nil && pair != nil
	})
	if pair.Local.Address != "127.0.0.1" || pair.Remote.Address != "127.0.0.1" {
		t.Fatalf("%s: selected pair %s -> %s, want 127.0.0.1 on both sides", p.c.User, pair.Local, pair.Remote)
	}
}

// activeStreams returns the stream ids (publisher users) of the sendonly
// m-lines of an offer: the tracks the server currently sends.
func activeStreams(sdp string) map[string]bool {
	out := map[string]bool{}
	for _, sec := range strings.Split(sdp, "m=")[1:] {
		if !strings.Contains(sec, "a=sendonly") {
			continue
		}
		for _, line := range strings.Split(sec, "\r\n") {
			if rest, ok := strings.CutPrefix(line, "a=msid:"); ok {
				out[strings.Fields(rest)[0]] = true
			}
		}
	}
	return out
}
