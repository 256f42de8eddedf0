package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/partyline/partyline/loadtest/executor"
	"github.com/partyline/partyline/loadtest/metrics"
	"github.com/partyline/partyline/realtime/wire"
)

func init() {
	RegisterScenario("voice", "Pion participants in voice rooms sending synthetic Opus; join-to-media time, packets received and loss", newVoice)
}

// audioLevelURI is RFC 6464's header extension, which the server's
// speaking detection reads.
const audioLevelURI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

// voice: each VU joins room (vu-1)/room_size (a public room, joined by
// subscribing), then its voice room, answers every offer the server
// makes, and, when it is one of the room's first `speakers` members,
// sends 20 ms Opus frames (50 packets a second) with the audio level
// extension. It stays until the scenario ends. Per VU it records the time
// from voice.join to the first packet received (voice_join_to_media),
// every packet received, and the loss seen in each stream's sequence
// numbers.
type voice struct {
	env   *Env
	m     *wsMetrics
	rooms *rooms
	api   *webrtc.API

	joinToMedia *metrics.Handle // voice_join_to_media
	received    *metrics.Handle // voice_packets_received
	loss        *metrics.Handle // voice_packet_loss: lost / expected
	opts        struct {
		RoomSize int64 `json:"room_size"`
		Speakers int64 `json:"speakers"`
		// Payload is the size of each synthetic Opus frame in bytes.
		Payload int `json:"payload"`
	}
}

type voiceVU struct {
	s      *session
	pc     *webrtc.PeerConnection
	mic    *webrtc.TrackLocalStaticRTP
	room   string
	joined time.Time
	first  atomic.Bool
	stop   chan struct{}
	wg     sync.WaitGroup
	sigs   chan wire.Message
	err    atomic.Value // first signaling error
}

func newVoice(env *Env, raw json.RawMessage) (Scenario, error) {
	s := &voice{env: env, m: newWSMetrics(env), rooms: newRooms(env),
		joinToMedia: env.Metrics.Trend("voice_join_to_media", true).With(env.Tags),
		received:    env.Metrics.Counter("voice_packets_received").With(env.Tags),
		loss:        env.Metrics.Rate("voice_packet_loss").With(env.Tags),
	}
	s.opts.RoomSize, s.opts.Speakers, s.opts.Payload = 5, 1, 80
	if err := decodeOptions(raw, &s.opts); err != nil {
		return nil, err
	}
	if s.opts.RoomSize < 2 || s.opts.Speakers < 1 || s.opts.Speakers > s.opts.RoomSize || s.opts.Payload < 1 || s.opts.Payload > 1000 {
		return nil, configErrorf("voice: room_size ≥ 2, 1 ≤ speakers ≤ room_size, 1 ≤ payload ≤ 1000")
	}
	api, err := voiceAPI(env.Loopback)
	if err != nil {
		return nil, err
	}
	s.api = api
	return s, nil
}

// voiceAPI is the participants' WebRTC stack: Opus with in-band FEC and
// the audio level extension. Against a loopback target ICE stays on
// loopback, as the server does in that case.
func voiceAPI(loopback bool) (*webrtc.API, error) {
	se := webrtc.SettingEngine{}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	se.LoggerFactory = lf
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if loopback {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		se.SetIncludeLoopbackCandidate(true)
		se.SetInterfaceFilter(func(n string) bool { return n == "lo" })
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType:        111,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: audioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir)), nil
}

func (s *voice) Iterate(ctx context.Context, vu *executor.VU) error {
	st, err := vuState(ctx, vu, s.join)
	if err != nil {
		return err
	}
	select {
	case <-vu.Ending:
	case <-ctx.Done():
	case <-st.s.done:
		return errors.New("the connection ended")
	}
	if err, _ := st.err.Load().(error); err != nil {
		return err
	}
	return ctx.Err()
}

// join connects the VU and joins its room's voice.
func (s *voice) join(ctx context.Context, vu *executor.VU) (*voiceVU, error) {
	user := s.env.User(vu.ID)
	room, err := s.rooms.of(ctx, vu.ID, s.opts.RoomSize)
	if err != nil {
		return nil, err
	}
	st := &voiceVU{room: room, stop: make(chan struct{}), sigs: make(chan wire.Message, 64)}
	st.s, err = dialSession(ctx, s.env, s.m, user, false, func(m wire.Message) {
		if m.Type == wire.TypeVoiceOffer || m.Type == wire.TypeVoiceICE {
			select {
			case st.sigs <- m:
			default:
				st.fail(errors.New("signaling backlog"))
			}
		}
	})
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*voiceVU, error) { s.release(st); return nil, err }
	// Subscribing makes the user a member of the public room.
	if _, err := st.s.c.Subscribe(ctx, "room:"+room); err != nil {
		return fail(fmt.Errorf("join room: %w", err))
	}
	if st.pc, err = s.api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		return fail(err)
	}
	if st.mic, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", user); err != nil {
		return fail(err)
	}
	tx, err := st.pc.AddTrack(st.mic)
	if err != nil {
		return fail(err)
	}
	st.wg.Add(1)
	go func() { // RTCP from the server keeps the interceptors going
		defer st.wg.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := tx.Read(buf); err != nil {
				return
			}
		}
	}()
	st.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { s.receive(st, tr) })
	st.pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			_ = st.s.c.Send(context.Background(), map[string]any{"type": wire.TypeVoiceICE, "room": room, "candidate": c.ToJSON()})
		}
	})
	st.wg.Add(1)
	go s.signal(st)
	st.joined = time.Now()
	err = st.s.timed(func() error {
		_, err := st.s.c.Request(ctx, map[string]any{"type": wire.TypeVoiceJoin, "room": room})
		return err
	})
	if !check(s.env, "voice joined", err == nil) {
		return fail(fmt.Errorf("voice.join: %w", err))
	}
	if (vu.ID-1)%s.opts.RoomSize < s.opts.Speakers {
		st.wg.Add(1)
		go s.transmit(st, tx, user)
	}
	return st, nil
}

func (st *voiceVU) fail(err error) { st.err.CompareAndSwap(nil, err) }

// signal answers every offer and applies every candidate, in order.
func (s *voice) signal(st *voiceVU) {
	defer st.wg.Done()
	for {
		var m wire.Message
		select {
		case <-st.stop:
			return
		case m = <-st.sigs:
		}
		switch m.Type {
		case wire.TypeVoiceOffer:
			if err := st.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.SDP}); err != nil {
				st.fail(fmt.Errorf("offer: %w", err))
				continue
			}
			ans, err := st.pc.CreateAnswer(nil)
			if err == nil {
				err = st.pc.SetLocalDescription(ans)
			}
			if err != nil {
				st.fail(fmt.Errorf("answer: %w", err))
				continue
			}
			_ = st.s.c.Send(context.Background(), map[string]any{"type": wire.TypeVoiceAnswer, "room": st.room, "sdp": ans.SDP})
		case wire.TypeVoiceICE:
			var c webrtc.ICECandidateInit
			if err := json.Unmarshal(m.Candidate, &c); err == nil {
				_ = st.pc.AddICECandidate(c)
			}
		}
	}
}

// transmit sends 50 packets a second with a loud audio level.
func (s *voice) transmit(st *voiceVU, tx *webrtc.RTPSender, user string) {
	defer st.wg.Done()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	payload := make([]byte, s.opts.Payload)
	copy(payload, user)
	var extID uint8
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111}, Payload: payload}
	for {
		select {
		case <-st.stop:
			return
		case <-tick.C:
		}
		pkt.SequenceNumber++
		pkt.Timestamp += 960
		if extID == 0 {
			for _, h := range tx.GetParameters().HeaderExtensions {
				if h.URI == audioLevelURI {
					extID = uint8(h.ID)
				}
			}
			if extID != 0 {
				_ = pkt.Header.SetExtension(extID, []byte{0x80 | 20}) // voice, -20 dBov
			}
		}
		_ = st.mic.WriteRTP(pkt)
	}
}

// receive reads one remote stream, counting packets and the gaps in
// their sequence numbers.
func (s *voice) receive(st *voiceVU, tr *webrtc.TrackRemote) {
	buf := make([]byte, 1500)
	var last uint16
	started := false
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			return
		}
		var h rtp.Header
		if _, err := h.Unmarshal(buf[:n]); err != nil {
			continue
		}
		if st.first.CompareAndSwap(false, true) {
			s.joinToMedia.Observe(time.Since(st.joined))
		}
		s.received.Add(1)
		if started {
			gap := h.SequenceNumber - last // wraps correctly
			if gap >= 1 && gap < 1000 {
				for range gap - 1 {
					s.loss.AddBool(true)
				}
			}
		}
		s.loss.AddBool(false)
		started, last = true, h.SequenceNumber
	}
}

func (s *voice) release(st *voiceVU) {
	close(st.stop)
	if st.pc != nil {
		_ = st.pc.Close()
	}
	st.s.close()
	st.wg.Wait()
}

func (s *voice) Retire(vu *executor.VU) {
	if st, _ := vu.State.(*voiceVU); st != nil {
		leave, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, _ = st.s.c.Request(leave, map[string]any{"type": wire.TypeVoiceLeave, "room": st.room})
		cancel()
		s.release(st)
	}
}
