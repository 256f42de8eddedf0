package main

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/partyline/partyline/realtime/client"
	"github.com/partyline/partyline/realtime/wire"
)

// TestVoiceWired checks that the server runs the voice extension: a room
// member's voice.join is answered with the ICE servers and followed by
// the server's offer, a non-member is refused, and the voice channel is
// the voice extension's.
func TestVoiceWired(t *testing.T) {
	s := startServer(t, nil, "--voice-stun-urls", "stun:stun.example.org:3478")
	owner := devToken(t, s, "vo_owner")
	resp, body := do(t, "POST", s.base+"/v1/rooms", owner, `{"name":"squad","visibility":"private"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create room: %d %s", resp.StatusCode, body)
	}
	var room struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &room)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dial := func(tok string) *client.Client {
		c, err := client.Dial(ctx, client.Options{URL: s.base, DisableReconnect: true,
			Token: func(context.Context) (string, error) { return tok, nil }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	c := dial(owner)
	m, err := c.Request(ctx, map[string]any{"type": wire.TypeVoiceJoin, "room": room.ID})
	if err != nil {
		t.Fatalf("voice.join: %v", err)
	}
	var reply struct {
		Participants []struct {
			User string `json:"user"`
		} `json:"participants"`
		ICEServers []struct {
			URLs []string `json:"urls"`
		} `json:"ice_servers"`
	}
	if err := json.Unmarshal(m.Raw, &reply); err != nil || len(reply.Participants) != 1 || len(reply.ICEServers) != 1 ||
		reply.ICEServers[0].URLs[0] != "stun:stun.example.org:3478" {
		t.Errorf("join reply %s: want the owner alone and the STUN server", m.Raw)
	}
	for offered := false; !offered; {
		select {
		case msg := <-c.Messages():
			if msg.Type == wire.TypeVoiceOffer {
				if msg.Room != room.ID || msg.SDP == "" {
					t.Errorf("offer %s", msg.Raw)
				}
				offered = true
			}
		case <-ctx.Done():
			t.Fatal("no voice.offer after the join")
		}
	}

	stranger := dial(devToken(t, s, "vo_stranger"))
	if _, err := stranger.Request(ctx, map[string]any{"type": wire.TypeVoiceJoin, "room": room.ID}); client.ErrorCode(err) != wire.CodeForbidden {
		t.Errorf("a non-member's voice.join: %v, want forbidden", err)
	}
	if _, err := stranger.Subscribe(ctx, "voice:"+room.ID); client.ErrorCode(err) != wire.CodeForbidden {
		t.Errorf("a non-member's sub to voice:%s: %v, want forbidden", room.ID, err)
	}
}
