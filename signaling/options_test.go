package signaling

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/realtime/wire"
)

type noMembers struct{}

func (noMembers) Member(ctx context.Context, room, user string) (bool, bool, error) {
	return false, false, nil
}

// idleNode is a Node that nothing is sent through.
type idleNode struct{}

func (idleNode) ID() string { return "n" }
func (idleNode) Publish(context.Context, string, string, string, string, json.RawMessage) (wire.Position, error) {
	return wire.Position{}, nil
}
func (idleNode) PublishEvent(context.Context, string, string, string, string, []string) error {
	return nil
}
func (idleNode) HandleNode(string, realtime.NodeHandler)             {}
func (idleNode) SendNode(context.Context, string, string, any) error { return nil }
func (idleNode) Nodes(context.Context) ([]string, error)             { return []string{"n"}, nil }

func TestOptionDefaults(t *testing.T) {
	o := Options{Members: noMembers{}, Node: idleNode{}}
	if err := o.setDefaults(); err != nil {
		t.Fatal(err)
	}
	if o.Capacity != 25 {
		t.Errorf("default capacity = %d, want 25", o.Capacity)
	}
	if o.DisconnectTimeout != 15*time.Second {
		t.Errorf("default disconnect timeout = %v, want 15s", o.DisconnectTimeout)
	}
	if o.UDPAddr != "127.0.0.1:7882" {
		t.Errorf("default UDP address = %q", o.UDPAddr)
	}
	if o.SpeakingInterval != 400*time.Millisecond {
		t.Errorf("speaking interval = %v, want 400ms (2.5 per second)", o.SpeakingInterval)
	}
	bad := []Options{
		{},
		{Members: noMembers{}},
		{Node: idleNode{}},
		{Members: noMembers{}, Node: idleNode{}, UDPAddr: "localhost:7882"},
		{Members: noMembers{}, Node: idleNode{}, UDPAddr: "127.0.0.1"},
		{Members: noMembers{}, Node: idleNode{}, PublicIP: "not-an-ip"},
		{Members: noMembers{}, Node: idleNode{}, PublicIP: "127.0.0.1"},
		{Members: noMembers{}, Node: idleNode{}, STUNURLs: []string{"http://x"}},
		{Members: noMembers{}, Node: idleNode{}, TURNTTL: 2 * time.Hour},
		{Members: noMembers{}, Node: idleNode{}, Capacity: -1},
	}
	for _, o := range bad {
		if err := o.setDefaults(); err == nil {
			t.Errorf("options %+v were accepted", o)
		}
	}
	if _, err := New(Options{Members: noMembers{}, Node: idleNode{}, Placement: realtime.NewMemoryLeases(realtime.MemoryLeasesOptions{TTL: time.Second}), RefreshInterval: time.Second}); err == nil {
		t.Error("a refresh interval over half the placement TTL was accepted")
	}
}

func TestICEServers(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	o := Options{STUNURLs: []string{"stun:stun.example.org:3478"}, TURNTTL: 30 * time.Minute}
	if diff := cmp.Diff([]ICEServer{{URLs: []string{"stun:stun.example.org:3478"}}}, iceServers(&o, "u_1", now)); diff != "" {
		t.Errorf("without a TURN secret (-want +got):\n%s", diff)
	}
	o.TURNURLs = []string{"turn:turn.example.org:3478?transport=udp"}
	o.TURNSecret = "s3cret"
	got := iceServers(&o, "u_1", now)
	name := "1700001800:u_1"
	mac := hmac.New(sha1.New, []byte("s3cret"))
	mac.Write([]byte(name))
	want := []ICEServer{
		{URLs: []string{"stun:stun.example.org:3478"}},
		{URLs: o.TURNURLs, Username: name, Credential: base64.StdEncoding.EncodeToString(mac.Sum(nil))},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ice servers (-want +got):\n%s", diff)
	}
	if got := iceServers(&Options{}, "u", now); got == nil || len(got) != 0 {
		t.Errorf("no servers = %#v, want an empty list", got)
	}
}

func TestAudioLevel(t *testing.T) {
	// V=2, X=1, CC=0; one-byte extensions: id 3 (len 1) = 0x85 (V bit,
	// level 5), padding.
	pkt := []byte{0x90, 111, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xBE, 0xDE, 0, 1, 0x30, 0x85, 0, 0, 'x'}
	if lvl, ok := audioLevel(pkt, 3); !ok || lvl != 5 {
		t.Errorf("audioLevel = %d, %v; want 5", lvl, ok)
	}
	if _, ok := audioLevel(pkt, 4); ok {
		t.Error("found an extension id that is not there")
	}
	for n := range len(pkt) - 1 {
		audioLevel(pkt[:n], 3) // truncated: must not panic
	}
	if allocs := testing.AllocsPerRun(100, func() { audioLevel(pkt, 3) }); allocs != 0 {
		t.Errorf("audioLevel allocates %v times", allocs)
	}
}

// TestDisableDirectPath: with the direct path, the ICE mux reads the
// port through srtpdirect; without it, one plain UDP socket.
func TestDisableDirectPath(t *testing.T) {
	for _, off := range []bool{false, true} {
		o := Options{UDPAddr: "127.0.0.1:0", TCPAddr: TCPOff, DisableDirectPath: off,
			ICEDisconnectedTimeout: 5 * time.Second, DisconnectTimeout: 15 * time.Second, ICEKeepalive: 2 * time.Second}
		mt, err := newMetrics(nil)
		if err != nil {
			t.Fatal(err)
		}
		m, err := openMedia(&o, mt)
		if err != nil {
			t.Fatal(err)
		}
		_, plain := m.udp.(*net.UDPConn)
		if got := m.dc == nil && plain && len(m.fws) == 0; got != off {
			t.Errorf("DisableDirectPath %v: the mux reads %T (direct path %v), want a plain socket: %v", off, m.udp, m.dc != nil, off)
		}
		m.close()
	}
}
