package main

import (
	"context"
	"encoding/json"
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
	roomID := createRoom(t, s.base, owner, "squad", "private")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := sdk(t, ctx, s.base, owner)
	m, err := c.Request(ctx, map[string]any{"type": wire.TypeVoiceJoin, "room": roomID})
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
				if msg.Room != roomID || msg.SDP == "" {
					t.Errorf("offer %s", msg.Raw)
				}
				offered = true
			}
		case <-ctx.Done():
			t.Fatal("no voice.offer after the join")
		}
	}

	stranger := sdk(t, ctx, s.base, devToken(t, s, "vo_stranger"))
	if _, err := stranger.Request(ctx, map[string]any{"type": wire.TypeVoiceJoin, "room": roomID}); client.ErrorCode(err) != wire.CodeForbidden {
		t.Errorf("a non-member's voice.join: %v, want forbidden", err)
	}
	if _, err := stranger.Subscribe(ctx, "voice:"+roomID); client.ErrorCode(err) != wire.CodeForbidden {
		t.Errorf("a non-member's sub to voice:%s: %v, want forbidden", roomID, err)
	}
}
