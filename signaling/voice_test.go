package signaling_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pion/webrtc/v4"

	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime/wire"
)

// joinReply is the ok reply to voice.join.
type joinReply struct {
	Participants []struct {
		User  string `json:"user"`
		Muted bool   `json:"muted"`
	} `json:"participants"`
	ICEServers []json.RawMessage `json:"ice_servers"`
}

func decodeJoin(t testing.TB, m wire.Message) joinReply {
	t.Helper()
	var r joinReply
	if err := json.Unmarshal(m.Raw, &r); err != nil {
		t.Fatalf("decode join reply %s: %v", m.Raw, err)
	}
	if r.ICEServers == nil {
		t.Fatalf("join reply %s has no ice_servers list", m.Raw)
	}
	return r
}

// call starts a stack with room r1 owned by u1 with members u2..un, and
// n peers joined in order.
func call(t *testing.T, s *stack, n int) []*peer {
	t.Helper()
	api := loopbackAPI(t)
	peers := make([]*peer, n)
	for i := range peers {
		peers[i] = newPeer(t, api, s.dial(fmt.Sprintf("u%d", i+1)))
		peers[i].join("r1")
	}
	return peers
}

func users(n int, except int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		if i != except {
			out = append(out, fmt.Sprintf("u%d", i))
		}
	}
	return out
}

func TestThreeParticipantsHearEachOther(t *testing.T) {
	s := newStack(t, stackConfig{})
	makeRoom(t, s.db, "r1", "u1", "u2", "u3", "u4")
	peers := call(t, s, 3)
	for i, p := range peers {
		p.hearsAll(t, 10*time.Second, users(3, i+1)...)
	}
	for i, p := range peers {
		p.assertLoopbackPair(t)
		got, wrong := p.senders()
		if _, self := got[p.c.User]; self {
			t.Errorf("%s received its own stream", p.c.User)
		}
		if wrong != 0 {
			t.Errorf("%s got %d packets under the wrong stream", p.c.User, wrong)
		}
		var from []string
		for u := range got {
			from = append(from, u)
		}
		slices.Sort(from)
		if diff := cmp.Diff(users(3, i+1), from); diff != "" {
			t.Errorf("%s heard (-want +got):\n%s", p.c.User, diff)
		}
	}
	if got := s.metric("partyline_voice_participants"); got != 3 {
		t.Errorf("participants gauge = %v, want 3", got)
	}
	if got := s.metric("partyline_voice_rooms"); got != 1 {
		t.Errorf("rooms gauge = %v, want 1", got)
	}
	fwd := s.metric("partyline_voice_forwarded_packets_total")
	in, out := s.metric("partyline_voice_direct_packets_total", "dir", "in"), s.metric("partyline_voice_direct_packets_total", "dir", "out")
	t.Logf("forwarded %v packets, %v of them sent on the direct path; %v received on it", fwd, out, in)
	if fwd == 0 {
		t.Error("no forwarded packets counted")
	}
	// Every session is UDP on the node's socket: once its keys, pair and
	// track are known, its packets take the direct path both ways. With
	// the direct path off, none do, and everyone heard everyone all the
	// same.
	if !testenv.FastPaths() {
		assertNoDirectPackets(t, in, out)
	} else if out < fwd/2 || in == 0 {
		t.Errorf("direct path sent %v of %v forwarded packets and received %v, want most and some", out, fwd, in)
	}
	// Each stream gets sender reports that count what was sent to it.
	for i, p := range peers {
		for _, u := range users(3, i+1) {
			testenv.EventuallyWithin(t, 3*time.Second, p.c.User+": a sender report for "+u, func() bool { return p.reportedFrom(u) > 0 })
			if got, max := p.reportedFrom(u), p.packetsFrom(u)+200; int(got) > max {
				t.Errorf("%s: sender report for %s counts %d packets, more than the %d received allow", p.c.User, u, got, max)
			}
		}
		// The node's receiver reports on the peer's microphone follow
		// what it receives, direct path included: nothing lost on
		// loopback, and the highest sequence number moving on.
		first := p.receiverReport()
		testenv.EventuallyWithin(t, 3*time.Second, p.c.User+": receiver reports that move on", func() bool {
			r := p.receiverReport()
			return r.LastSequenceNumber > first.LastSequenceNumber+25
		})
		if r := p.receiverReport(); r.TotalLost != 0 || r.FractionLost != 0 {
			t.Errorf("%s: receiver report %+v counts losses on loopback", p.c.User, r)
		}
	}

	// A fourth joins mid-call: within 2 s everyone hears the three others.
	p4 := newPeer(t, loopbackAPI(t), s.dial("u4"))
	start := time.Now()
	reply := decodeJoin(t, p4.join("r1"))
	if len(reply.Participants) != 4 {
		t.Errorf("join reply participants = %+v, want 4", reply.Participants)
	}
	peers = append(peers, p4)
	for i, p := range peers {
		p.hearsAll(t, 2*time.Second-time.Since(start)+time.Second, users(4, i+1)...)
	}
	t.Logf("four-way audio %v after the fourth join", time.Since(start))
	if got := s.metric("partyline_voice_renegotiations_total"); got < 3 {
		t.Errorf("renegotiations = %v, want at least 3 (one per earlier participant)", got)
	}
}

func TestMuteStopsAndResumesForwarding(t *testing.T) {
	s := newStack(t, stackConfig{})
	makeRoom(t, s.db, "r1", "u1", "u2")
	peers := call(t, s, 2)
	a, b := peers[0], peers[1]
	b.c.OK(map[string]any{"type": "sub", "channel": "voice:r1"})
	b.hearsAll(t, 10*time.Second, "u1")
	a.assertLoopbackPair(t)

	a.c.OK(map[string]any{"type": "voice.mute", "room": "r1", "muted": true})
	muted := time.Now()
	// Packets already in flight may land just after the reply; after that
	// nothing more arrives. Poll with a deadline: the count must settle
	// within 200 ms of the mute and then stay put.
	var settled int
	testenv.EventuallyWithin(t, time.Second, "forwarding to stop", func() bool {
		last := b.lastFrom("u1")
		return time.Since(last) > 100*time.Millisecond
	})
	if stop := b.lastFrom("u1").Sub(muted); stop > 200*time.Millisecond {
		t.Errorf("last packet from the muted u1 arrived %v after the mute, want within 200ms", stop)
	}
	settled = b.packetsFrom("u1")
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		if got := b.packetsFrom("u1"); got != settled {
			t.Fatalf("packets from the muted u1 kept arriving: %d then %d", settled, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.metric("partyline_voice_dropped_packets_total", "reason", "muted"); got == 0 {
		t.Error("muted packets were not counted as dropped")
	}
	waitMsg(t, b.c, "voice.muted", func(d map[string]any) bool { return d["user"] == "u1" && d["muted"] == true })

	a.c.OK(map[string]any{"type": "voice.mute", "room": "r1", "muted": false})
	b.hearsAll(t, 2*time.Second, "u1")
}

// waitMsg subscribes nothing; the caller's client must be subscribed to
// voice:r1. It waits for a msg of kind whose data matches.
func waitMsg(t testing.TB, c *client, kind string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	var got map[string]any
	testenv.Eventually(t, c.User+" to get "+kind, func() bool {
		for _, m := range c.msgsOf(kind) {
			var d map[string]any
			if json.Unmarshal(m.Data, &d) == nil && match(d) {
				got = d
				return true
			}
		}
		return false
	})
	return got
}

func TestOwnerServerMuteAndKick(t *testing.T) {
	s := newStack(t, stackConfig{})
	makeRoom(t, s.db, "r1", "u1", "u2", "u3")
	peers := call(t, s, 3)
	owner, u2, u3 := peers[0], peers[1], peers[2]
	owner.c.OK(map[string]any{"type": "sub", "channel": "voice:r1"})
	owner.hearsAll(t, 10*time.Second, "u2", "u3")

	// A non-owner may do neither.
	u3.c.WantError(wire.CodeForbidden, map[string]any{"type": "voice.mute", "room": "r1", "user": "u2", "muted": true})
	u3.c.WantError(wire.CodeForbidden, map[string]any{"type": "voice.kick", "room": "r1", "user": "u2"})
	owner.c.WantError(wire.CodeNotFound, map[string]any{"type": "voice.kick", "room": "r1", "user": "nobody"})
	owner.c.WantError(wire.CodeBadRequest, map[string]any{"type": "voice.mute", "room": "r1", "user": "u2"})

	owner.c.OK(map[string]any{"type": "voice.mute", "room": "r1", "user": "u2", "muted": true})
	testenv.EventuallyWithin(t, 2*time.Second, "u2's audio to stop at the owner", func() bool {
		return time.Since(owner.lastFrom("u2")) > 150*time.Millisecond
	})
	waitMsg(t, owner.c, "voice.muted", func(d map[string]any) bool {
		return d["user"] == "u2" && d["server_muted"] == true && d["by"] == "u1"
	})
	// A server-muted participant cannot unmute themselves.
	u2.c.WantError(wire.CodeForbidden, map[string]any{"type": "voice.mute", "room": "r1", "muted": false})
	owner.c.OK(map[string]any{"type": "voice.mute", "room": "r1", "user": "u2", "muted": false})
	owner.hearsAll(t, 2*time.Second, "u2")

	owner.c.OK(map[string]any{"type": "voice.kick", "room": "r1", "user": "u3"})
	left := waitMsg(t, owner.c, "voice.left", func(d map[string]any) bool { return d["user"] == "u3" && d["reason"] == "kicked" })
	if ps, _ := left["participants"].([]any); len(ps) != 2 {
		t.Errorf("voice.left participants = %v, want u1 and u2", left["participants"])
	}
	testenv.Eventually(t, "an offer to the owner without u3's track", func() bool {
		return !activeStreams(owner.lastOffer())["u3"] && activeStreams(owner.lastOffer())["u2"]
	})
	// The kicked connection is out of the room and may join again (with
	// a new PeerConnection, as a client would make).
	u3.c.WantError(wire.CodeNotFound, map[string]any{"type": "voice.leave", "room": "r1"})
	u3.renew(loopbackAPI(t))
	u3.join("r1")
	owner.hearsAll(t, 5*time.Second, "u3")
	u3.hearsAll(t, 5*time.Second, "u1", "u2")
}

func TestSpeaking(t *testing.T) {
	s := newStack(t, stackConfig{})
	makeRoom(t, s.db, "r1", "u1", "u2", "u3")
	api := loopbackAPI(t)
	watcher := s.dial("u3")
	watcher.OK(map[string]any{"type": "sub", "channel": "voice:r1"})
	loud := newPeer(t, api, s.dial("u1"))
	quiet := newPeer(t, api, s.dial("u2"))
	loud.level.Store(20)   // -20 dBov: talking
	quiet.level.Store(127) // silence
	loud.join("r1")
	quiet.join("r1")
	quiet.hearsAll(t, 10*time.Second, "u1")
	loud.hearsAll(t, 10*time.Second, "u2")

	testenv.Eventually(t, "u1 in a speaking event", func() bool {
		for _, e := range watcher.eventsNamed("speaking") {
			if slices.Contains(e.Users, "u1") {
				return true
			}
		}
		return false
	})
	for _, e := range watcher.eventsNamed("speaking") {
		if e.Channel != "voice:r1" {
			t.Errorf("speaking event on %s", e.Channel)
		}
		if slices.Contains(e.Users, "u2") {
			t.Errorf("the silent u2 appeared in speaking %v", e.Users)
		}
	}
	// Quiet again: the set empties, in one more event.
	loud.level.Store(127)
	testenv.Eventually(t, "an empty speaking set", func() bool {
		ev := watcher.eventsNamed("speaking")
		return len(ev) > 0 && len(ev[len(ev)-1].Users) == 0
	})
	// Events go out only on change, so two in a row never repeat a set.
	ev := watcher.eventsNamed("speaking")
	for i := 1; i < len(ev); i++ {
		if slices.Equal(ev[i-1].Users, ev[i].Users) {
			t.Errorf("speaking events %d and %d repeat %v", i-1, i, ev[i].Users)
		}
	}
}

func TestJoinRules(t *testing.T) {
	s := newStack(t, stackConfig{})
	makeRoom(t, s.db, "r1", "u1", "u2")
	makeRoom(t, s.db, "r2", "u1")
	u1 := s.dial("u1")
	outsider := s.dial("stranger")

	outsider.WantError(wire.CodeForbidden, map[string]any{"type": "voice.join", "room": "r1"})
	outsider.WantError(wire.CodeForbidden, map[string]any{"type": "sub", "channel": "voice:r1"})
	u1.WantError(wire.CodeNotFound, map[string]any{"type": "voice.join", "room": "nosuch"})
	u1.WantError(wire.CodeBadRequest, map[string]any{"type": "voice.join", "room": "bad room!"})
	u1.WantError(wire.CodeBadRequest, map[string]any{"type": "voice.join"})
	u1.WantError(wire.CodeBadRequest, map[string]any{"type": "voice.join", "room": 7})
	u1.WantError(wire.CodeForbidden, map[string]any{"type": "pub", "channel": "voice:r1", "data": map[string]any{"x": 1}})
	u1.OK(map[string]any{"type": "sub", "channel": "voice:r1"})

	reply := u1.OK(map[string]any{"type": "voice.join", "room": "r1"})
	j := decodeJoin(t, reply)
	if len(j.Participants) != 1 || j.Participants[0].User != "u1" {
		t.Errorf("participants = %+v, want u1 alone", j.Participants)
	}
	// One voice room per connection, and one connection per user in a room.
	u1.WantError(wire.CodeConflict, map[string]any{"type": "voice.join", "room": "r2"})
	u1.WantError(wire.CodeConflict, map[string]any{"type": "voice.join", "room": "r1"})
	s.dial("u1").WantError(wire.CodeConflict, map[string]any{"type": "voice.join", "room": "r1"})

	// Signaling for a room the connection is not in is refused with an
	// error message (no id: answer and ice are notifications).
	u2 := s.dial("u2")
	u2.Write(map[string]any{"type": "voice.answer", "room": "r1", "sdp": "v=0"})
	u2.Write(map[string]any{"type": "voice.ice", "room": "r1", "candidate": map[string]any{"candidate": ""}})
	testenv.Eventually(t, "two error messages to u2", func() bool { return len(u2.errorMsgs()) == 2 })
	for _, e := range u2.errorMsgs() {
		if e["code"] != wire.CodeNotFound || e["room"] != "r1" || e["id"] != nil {
			t.Errorf("error message %v, want not_found for r1 without id", e)
		}
	}
	u2.OK(map[string]any{"type": "ping"}) // the connection lives on

	// Bad SDP from a participant: an error message; the offer stays
	// outstanding for a proper answer, and the connection lives on.
	u1.Write(map[string]any{"type": "voice.answer", "room": "r1", "sdp": "garbage"})
	u1.Write(map[string]any{"type": "voice.answer", "room": "r1"})
	u1.Write(map[string]any{"type": "voice.ice", "room": "r1", "candidate": "nope"})
	testenv.Eventually(t, "errors for the bad answers and candidate", func() bool { return len(u1.errorMsgs()) == 3 })
	for _, e := range u1.errorMsgs() {
		if e["code"] != wire.CodeBadRequest {
			t.Errorf("error message %v, want bad_request", e)
		}
	}
	u1.OK(map[string]any{"type": "ping"})
	u1.OK(map[string]any{"type": "voice.leave", "room": "r1"})
	u1.WantError(wire.CodeNotFound, map[string]any{"type": "voice.leave", "room": "r1"})
	waitMsg(t, u1, "voice.joined", func(d map[string]any) bool { return d["user"] == "u1" })
	waitMsg(t, u1, "voice.left", func(d map[string]any) bool { return d["user"] == "u1" && d["reason"] == "left" })
	testenv.Eventually(t, "the empty room to close", func() bool { return s.metric("partyline_voice_rooms") == 0 })
}

func TestCapacity(t *testing.T) {
	s := newStack(t, stackConfig{})
	var members []string
	for i := 2; i <= 26; i++ {
		members = append(members, fmt.Sprintf("u%d", i))
	}
	makeRoom(t, s.db, "r1", "u1", members...)
	// The default capacity, 25, joined by signaling alone: these clients
	// never answer, so each holds a seat until ConnectTimeout.
	for i := 1; i <= 25; i++ {
		s.dial(fmt.Sprintf("u%d", i)).OK(map[string]any{"type": "voice.join", "room": "r1"})
	}
	s.dial("u26").WantError(wire.CodeLimitExceeded, map[string]any{"type": "voice.join", "room": "r1"})
	if got := s.metric("partyline_voice_participants"); got != 25 {
		t.Errorf("participants = %v, want 25", got)
	}
}

func TestSocketCloseRemovesParticipant(t *testing.T) {
	s := newStack(t, stackConfig{})
	makeRoom(t, s.db, "r1", "u1", "u2", "u3")
	peers := call(t, s, 3)
	peers[0].c.OK(map[string]any{"type": "sub", "channel": "voice:r1"})
	for i, p := range peers {
		p.hearsAll(t, 10*time.Second, users(3, i+1)...)
	}
	peers[2].c.Close() // the socket only; the PeerConnection closes at cleanup
	waitMsg(t, peers[0].c, "voice.left", func(d map[string]any) bool { return d["user"] == "u3" && d["reason"] == "closed" })
	for _, p := range peers[:2] {
		testenv.Eventually(t, p.c.User+": an offer without u3's track", func() bool {
			a := activeStreams(p.lastOffer())
			return !a["u3"] && len(a) == 1
		})
	}
	peers[0].hearsAll(t, 2*time.Second, "u2")
	testenv.Eventually(t, "two participants", func() bool { return s.metric("partyline_voice_participants") == 2 })
}

func TestICEFailureRemovesParticipant(t *testing.T) {
	s := newStack(t, stackConfig{})
	makeRoom(t, s.db, "r1", "u1", "u2")
	peers := call(t, s, 2)
	peers[0].c.OK(map[string]any{"type": "sub", "channel": "voice:r1"})
	peers[0].hearsAll(t, 10*time.Second, "u2")
	// u2's media goes away while its socket stays: ICE disconnects and,
	// after DisconnectTimeout (2 s here), u2 is removed.
	peers[1].stopMedia()
	waitMsg(t, peers[0].c, "voice.left", func(d map[string]any) bool { return d["user"] == "u2" && d["reason"] == "ice_failed" })
	// Its connection may join again.
	testenv.Eventually(t, "u2 to be free to rejoin", func() bool {
		m := peers[1].c.Do(map[string]any{"type": "voice.join", "room": "r1"})
		return m.Type == wire.TypeOK
	})
}

// TestICETCPFallback connects a peer that cannot use UDP: it reaches the
// server's passive ICE-TCP candidate on loopback.
func TestICETCPFallback(t *testing.T) {
	s := newStack(t, stackConfig{})
	makeRoom(t, s.db, "r1", "u1", "u2")
	udp := newPeer(t, loopbackAPI(t), s.dial("u1"))
	udp.join("r1")
	tcp := newPeer(t, loopbackAPIOn(t, webrtc.NetworkTypeTCP4), s.dial("u2"))
	tcp.join("r1")
	tcp.hearsAll(t, 10*time.Second, "u1")
	udp.hearsAll(t, 10*time.Second, "u2")
	tcp.assertLoopbackPair(t)
	_, _, tx := tcp.conn()
	pair, err := tx.Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair.Local.Protocol != webrtc.ICEProtocolTCP {
		t.Errorf("u2's selected pair = %v (%v), want TCP", pair, err)
	}
}

// TestPionPathWithoutKeys: a client that takes the DTLS server role
// leaves the node, its DTLS client, without the session's keys. That
// session's audio goes through Pion's path both ways, and the other
// session's stays on the direct path (unless it is off); they hear each
// other.
func TestPionPathWithoutKeys(t *testing.T) {
	s := newStack(t, stackConfig{})
	makeRoom(t, s.db, "r1", "u1", "u2")
	direct := newPeer(t, loopbackAPI(t), s.dial("u1"))
	direct.join("r1")
	pion := newPeer(t, loopbackAPIOn(t, webrtc.NetworkTypeUDP4, func(se *webrtc.SettingEngine) {
		if err := se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer); err != nil {
			t.Fatal(err)
		}
	}), s.dial("u2"))
	pion.join("r1")
	direct.hearsAll(t, 10*time.Second, "u2")
	pion.hearsAll(t, 10*time.Second, "u1")
	direct.assertLoopbackPair(t)
	pion.assertLoopbackPair(t)
	time.Sleep(500 * time.Millisecond)
	viaPion := pion.packetsFrom("u1") // every one came through Pion's path
	fwd := s.metric("partyline_voice_forwarded_packets_total")
	in, out := s.metric("partyline_voice_direct_packets_total", "dir", "in"), s.metric("partyline_voice_direct_packets_total", "dir", "out")
	t.Logf("forwarded %v: %v sent directly, %v received directly; u2 got %d from u1", fwd, out, in, viaPion)
	if !testenv.FastPaths() {
		assertNoDirectPackets(t, in, out)
	} else if in == 0 || out == 0 {
		t.Errorf("the direct session's packets: %v in and %v out on the direct path, want some each way", in, out)
	}
	if fwd-out < float64(viaPion) {
		t.Errorf("only %v packets went through Pion's path, but u2 received %d", fwd-out, viaPion)
	}
	for _, p := range []*peer{direct, pion} {
		from := map[*peer]string{direct: "u2", pion: "u1"}[p]
		testenv.EventuallyWithin(t, 3*time.Second, p.c.User+": a sender report", func() bool { return p.reportedFrom(from) > 0 })
	}
}

// assertNoDirectPackets checks, with the direct path off
// (PARTYLINE_TEST_FAST_PATHS=off), that it carried nothing: the audio the
// test heard went through Pion's path.
func assertNoDirectPackets(t *testing.T, in, out float64) {
	t.Helper()
	if in != 0 || out != 0 {
		t.Errorf("with the direct path off, it carried %v packets in and %v out, want none", in, out)
	}
}
