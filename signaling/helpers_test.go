package signaling_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/realtime/wire"
	"github.com/partyline/partyline/signaling"
	"github.com/partyline/partyline/store/sqlite"
)

// waitFor bounds every wait. A wait that succeeds returns as soon as its
// condition holds, so it may be generous.
const waitFor = 15 * time.Second

// eventually polls cond until it holds, and fails the test when waitFor
// passes first. It must run on the test's goroutine.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, waitFor, what, cond)
}

func eventuallyWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		<-tick.C
	}
}

// tokenAuth takes the token itself as the user id.
type tokenAuth struct{}

func (tokenAuth) Authenticate(ctx context.Context, token string) (string, time.Time, error) {
	if token == "" {
		return "", time.Time{}, fmt.Errorf("empty token: %w", partyline.ErrUnauthorized)
	}
	return token, time.Now().Add(time.Hour), nil
}

// quietLogger discards logs (PARTYLINE_TEST_VERBOSE=1 shows them) but
// fails the test on an error record: a panic caught in a room actor, or
// a failure that should not happen.
func quietLogger(t testing.TB) *slog.Logger {
	var h slog.Handler = slog.NewTextHandler(io.Discard, nil)
	if os.Getenv("PARTYLINE_TEST_VERBOSE") != "" {
		h = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	return slog.New(failOnError{h, t})
}

type failOnError struct {
	slog.Handler
	t testing.TB
}

func (f failOnError) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError && strings.HasPrefix(r.Message, "voice:") {
		var attrs []string
		r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a.String()); return true })
		f.t.Errorf("error log: %s %v", r.Message, attrs)
	}
	return f.Handler.Handle(ctx, r)
}

func (f failOnError) WithAttrs(as []slog.Attr) slog.Handler {
	return failOnError{f.Handler.WithAttrs(as), f.t}
}

func (f failOnError) WithGroup(name string) slog.Handler {
	return failOnError{f.Handler.WithGroup(name), f.t}
}

// openDB returns a migrated SQLite store, closed when the test ends.
func openDB(t testing.TB) *sqlite.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "voice.db")})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

// makeRoom creates a room owned by owner with the other users as members.
func makeRoom(t testing.TB, db *sqlite.DB, id, owner string, members ...string) {
	t.Helper()
	ctx := context.Background()
	if err := db.CreateRoom(ctx, chat.Room{ID: id, Name: id, Visibility: chat.Private, Owner: owner, CreatedAt: time.Now()}); err != nil {
		t.Fatalf("CreateRoom: %v", err)
	}
	for _, m := range members {
		if err := db.PutMember(ctx, id, m, chat.RoleMember); err != nil {
			t.Fatalf("PutMember: %v", err)
		}
	}
}

// stackConfig describes one node of a test deployment.
type stackConfig struct {
	db       *sqlite.DB
	nodeID   string
	node     func(*realtime.Options)  // adjusts the node's options
	voice    func(*signaling.Options) // adjusts the voice options
	registry *prometheus.Registry
}

// stack is one node: chat and voice on a realtime Node behind an HTTP
// server, with voice on loopback.
type stack struct {
	t      testing.TB
	db     *sqlite.DB
	voice  *signaling.Voice
	node   *realtime.Node
	srv    *httptest.Server
	reg    *prometheus.Registry
	stopV  context.CancelFunc
	voiceD chan error
	stopN  context.CancelFunc
	nodeD  chan error
}

// stopNode stops the node's Run and waits for it; it is idempotent.
func (s *stack) stopNode() {
	s.stopN()
	if err, ok := <-s.nodeD; ok {
		if err != nil {
			s.t.Errorf("node.Run: %v", err)
		}
		close(s.nodeD)
	}
}

func newStack(t testing.TB, cfg stackConfig) *stack {
	t.Helper()
	quiet := quietLogger(t)
	if cfg.db == nil {
		cfg.db = openDB(t)
	}
	if cfg.nodeID == "" {
		cfg.nodeID = "test"
	}
	if cfg.registry == nil {
		cfg.registry = prometheus.NewRegistry()
	}
	c, err := chat.New(chat.Options{Store: cfg.db, Logger: quiet})
	if err != nil {
		t.Fatalf("chat.New: %v", err)
	}
	vopts := signaling.Options{
		Members:                signaling.ChatMembers{Store: cfg.db},
		UDPAddr:                "127.0.0.1:0",
		Registerer:             cfg.registry,
		Logger:                 quiet,
		DisconnectTimeout:      2 * time.Second,
		ICEDisconnectedTimeout: time.Second,
		RefreshInterval:        200 * time.Millisecond,
	}
	if cfg.voice != nil {
		cfg.voice(&vopts)
	}
	v, err := signaling.New(vopts)
	if err != nil {
		t.Fatalf("signaling.New: %v", err)
	}
	opts := realtime.Options{
		NodeID:      cfg.nodeID,
		Auth:        tokenAuth{},
		Extensions:  []realtime.Extension{c, v},
		PublishRate: 1000,
		Logger:      quiet,
	}
	if cfg.node != nil {
		cfg.node(&opts)
	}
	node, err := realtime.New(opts)
	if err != nil {
		t.Fatalf("realtime.New: %v", err)
	}
	c.SetPublisher(node)
	v.Attach(node)

	s := &stack{t: t, db: cfg.db, voice: v, node: node, reg: cfg.registry, voiceD: make(chan error, 1), nodeD: make(chan error, 1)}
	nodeCtx, stopNode := context.WithCancel(context.Background())
	s.stopN = stopNode
	go func() { s.nodeD <- node.Run(nodeCtx) }()
	t.Cleanup(s.stopNode)
	voiceCtx, stopVoice := context.WithCancel(context.Background())
	s.stopV = stopVoice
	go func() { s.voiceD <- v.Run(voiceCtx) }()
	t.Cleanup(s.stopVoice)

	mux := http.NewServeMux()
	mux.Handle("/v1/ws", node)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)

	eventually(t, "the node to run", func() bool {
		resp, err := s.srv.Client().Get(s.srv.URL + "/v1/ws")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode != http.StatusServiceUnavailable
	})
	eventually(t, "voice to run", func() bool {
		_, err := v.SelfCheck()
		return err == nil
	})
	return s
}

// stopVoice stops the voice Run and waits for it; it is idempotent.
func (s *stack) stopVoice() {
	s.stopV()
	if err, ok := <-s.voiceD; ok {
		if err != nil {
			s.t.Errorf("voice.Run: %v", err)
		}
		close(s.voiceD)
	}
}

// counter reads a counter or gauge of the stack's registry.
func (s *stack) metric(name string, labels ...string) float64 {
	s.t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		s.t.Fatalf("gather: %v", err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

// client is a WebSocket connection that said hello as user. It keeps
// replies by id, msgs and events, and hands voice notifications to its
// handler in order.
type client struct {
	t    testing.TB
	user string
	ws   *websocket.Conn
	next atomic.Uint64
	// closed is set when the test closes the connection; writes from the
	// peer's goroutines may fail after it.
	closed atomic.Bool

	mu      sync.Mutex
	replies map[uint64]wire.Message
	msgs    []wire.Message
	events  []wire.Message
	errs    []map[string]any // error messages without id
	readErr error
	voice   chan []byte // voice.offer and voice.ice, in order
	done    chan struct{}
}

func (s *stack) dial(user string) *client {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	url := "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/v1/ws"
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{wire.Subprotocol}, HTTPClient: s.srv.Client()})
	if err != nil {
		s.t.Fatalf("dial: %v", err)
	}
	ws.SetReadLimit(1 << 20)
	c := &client{t: s.t, user: user, ws: ws, replies: map[uint64]wire.Message{}, voice: make(chan []byte, 1024), done: make(chan struct{})}
	go c.read()
	s.t.Cleanup(c.close)
	c.ok(map[string]any{"type": "hello", "token": user})
	return c
}

func (c *client) read() {
	defer close(c.done)
	defer close(c.voice)
	for {
		_, frame, err := c.ws.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			c.readErr = err
			c.mu.Unlock()
			return
		}
		_ = wire.Split(frame, func(b []byte) error {
			b = bytes.Clone(b)
			var head struct {
				Type string `json:"type"`
				ID   uint64 `json:"id"`
			}
			_ = json.Unmarshal(b, &head)
			switch head.Type {
			case wire.TypeVoiceOffer, wire.TypeVoiceICE:
				c.voice <- b
				return nil
			}
			m, err := wire.DecodeMessage(b)
			if err != nil {
				return err
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			switch {
			case m.Type == wire.TypeMsg:
				c.msgs = append(c.msgs, m)
			case m.Type == wire.TypeEvent:
				c.events = append(c.events, m)
			case m.ID != 0:
				c.replies[m.ID] = m
			case m.Type == wire.TypeError:
				var e map[string]any
				_ = json.Unmarshal(b, &e)
				c.errs = append(c.errs, e)
			}
			return nil
		})
	}
}

func (c *client) close() {
	c.closed.Store(true)
	c.ws.Close(websocket.StatusNormalClosure, "")
	<-c.done
}

func (c *client) write(req map[string]any) {
	c.t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		c.t.Fatalf("encode: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil && !c.closed.Load() {
		c.t.Errorf("%s: write: %v", c.user, err)
	}
}

func (c *client) do(req map[string]any) wire.Message {
	c.t.Helper()
	id := c.next.Add(1)
	req["id"] = id
	c.write(req)
	var m wire.Message
	eventually(c.t, fmt.Sprintf("%s: reply %d to %v", c.user, id, req["type"]), func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.readErr != nil {
			c.t.Fatalf("%s: connection ended waiting for reply %d: %v", c.user, id, c.readErr)
		}
		var ok bool
		m, ok = c.replies[id]
		return ok
	})
	return m
}

func (c *client) ok(req map[string]any) wire.Message {
	c.t.Helper()
	m := c.do(req)
	if m.Type != wire.TypeOK {
		c.t.Fatalf("%s: %v: got %s %s (%s), want ok", c.user, req, m.Type, m.Code, m.Message)
	}
	return m
}

func (c *client) wantError(code string, req map[string]any) {
	c.t.Helper()
	m := c.do(req)
	if m.Type != wire.TypeError || m.Code != code {
		c.t.Fatalf("%s: %v: got %s %q (%s), want error %q", c.user, req, m.Type, m.Code, m.Message, code)
	}
}

// msgsOf returns the msgs of the given kind received so far.
func (c *client) msgsOf(kind string) []wire.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []wire.Message
	for _, m := range c.msgs {
		if m.Kind == kind {
			out = append(out, m)
		}
	}
	return out
}

func (c *client) eventsNamed(name string) []wire.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []wire.Message
	for _, m := range c.events {
		if m.Event == name {
			out = append(out, m)
		}
	}
	return out
}

func (c *client) errorMsgs() []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]map[string]any(nil), c.errs...)
}

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
	mic, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", c.user)
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
		c.write(map[string]any{"type": "voice.ice", "room": room, "candidate": cand.ToJSON()})
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
	return p.c.ok(map[string]any{"type": "voice.join", "room": room})
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
			p.c.write(map[string]any{"type": "voice.answer", "room": m.Room, "sdp": ans.SDP})
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
	payload := []byte("from:" + p.c.user + ";" + strings.Repeat("x", 60))
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
		p.c.close() // ends signal
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
	eventuallyWithin(t, within, fmt.Sprintf("%s to hear %v", p.c.user, users), func() bool {
		if err := p.err(); err != nil {
			t.Fatalf("%s: signaling: %v", p.c.user, err)
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
	eventually(t, p.c.user+"'s selected candidate pair", func() bool {
		var err error
		_, _, tx := p.conn()
		pair, err = tx.Transport().ICETransport().GetSelectedCandidatePair()
		return err == nil && pair != nil
	})
	if pair.Local.Address != "127.0.0.1" || pair.Remote.Address != "127.0.0.1" {
		t.Fatalf("%s: selected pair %s -> %s, want 127.0.0.1 on both sides", p.c.user, pair.Local, pair.Remote)
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
