package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/partyline/partyline/internal/server"
	"github.com/partyline/partyline/internal/server/servertest"
	"github.com/partyline/partyline/realtime/wire"
)

// TestPublishRules checks every namespace's publish rule through the
// whole server: a client's pub goes through the core, which applies the
// namespace owner's rule (chat's membership for room and dm; the clip and
// voice extensions and the core's own namespaces take no client
// publications), and the server API's publish goes to the owner's
// ServerPublish or straight into the stream.
func TestPublishRules(t *testing.T) {
	srv := servertest.Start(t, server.Options{})
	private := createRoom(t, srv, "u_owner", "private")
	public := createRoom(t, srv, "u_owner", "public")
	srv.Want(t, http.StatusOK, servertest.Request{Method: "PUT", Path: "/v1/rooms/" + private + "/members/u_member", Token: "u_owner"})

	for _, tc := range []struct {
		user, channel, want string // want "" means ok
	}{
		{"u_owner", "room:" + private, ""},
		{"u_member", "room:" + private, ""},
		{"u_stranger", "room:" + private, wire.CodeForbidden},
		{"u_stranger", "room:" + public, wire.CodeForbidden}, // subscribing joins; publishing does not
		{"u_owner", "room:r_missing", wire.CodeNotFound},
		{"u_ann", "dm:u_ann:u_bob", ""},
		{"u_bob", "dm:u_ann:u_bob", ""},
		{"u_cat", "dm:u_ann:u_bob", wire.CodeForbidden},
		{"u_bob", "dm:u_bob:u_ann", wire.CodeBadRequest}, // not sorted
		{"u_ann", "user:u_ann", wire.CodeForbidden},
		{"u_ann", "status:u_ann", wire.CodeForbidden},
		{"u_ann", "broadcast:finals", wire.CodeForbidden},
		{"u_ann", "clip:c_any", wire.CodeForbidden},
		{"u_owner", "voice:" + private, wire.CodeForbidden},
		{"u_ann", "nope:x", wire.CodeBadRequest},
		{"u_ann", "room", wire.CodeBadRequest},
	} {
		t.Run(tc.user+" "+tc.channel, func(t *testing.T) {
			c := srv.Dial(t, tc.user, nil)
			req := map[string]any{"type": "pub", "channel": tc.channel, "data": map[string]string{"text": "gg"}}
			if tc.want != "" {
				c.WantError(tc.want, req)
				return
			}
			m := c.OK(req)
			if got := servertest.Decode[struct {
				MsgID  string `json:"msg_id"`
				Offset uint64 `json:"offset"`
			}](t, m.Raw); got.MsgID == "" || got.Offset == 0 {
				t.Fatalf("pub: reply %s has no msg id or offset", m.Raw)
			}
		})
	}

	t.Run("server API", func(t *testing.T) {
		for _, tc := range []struct {
			channel string
			status  int
		}{
			{"room:" + private, http.StatusOK},
			{"dm:u_ann:u_bob", http.StatusOK},
			{"room:r_missing", http.StatusNotFound},
			{"user:u_ann", http.StatusOK},
			{"status:u_ann", http.StatusOK},
			{"broadcast:finals", http.StatusOK},
			{"clip:c_any", http.StatusOK},
			{"voice:" + private, http.StatusOK},
			{"nope:x", http.StatusBadRequest},
		} {
			srv.Want(t, tc.status, servertest.Request{Method: "POST", Path: "/v1/server/publish", Token: servertest.APIKey,
				Body: map[string]any{"channel": tc.channel, "kind": "notice", "data": map[string]string{"text": "maintenance"}}})
		}
		// The room's message went through chat: it is stored, as from the
		// server.
		m := srv.Dial(t, "u_member", nil).OK(map[string]any{"type": "history", "channel": "room:" + private, "limit": 50})
		if !strings.Contains(string(m.Raw), `"from":"system"`) || !strings.Contains(string(m.Raw), "maintenance") {
			t.Fatalf("the server API's room message is not in the room's history: %s", m.Raw)
		}
	})
}

// createRoom creates a room through REST and returns its id.
func createRoom(t *testing.T, srv *servertest.Server, owner, visibility string) string {
	t.Helper()
	res := srv.Want(t, http.StatusCreated, servertest.Request{Method: "POST", Path: "/v1/rooms", Token: owner,
		Body: map[string]string{"name": "squad", "visibility": visibility}})
	return servertest.Decode[struct {
		ID string `json:"id"`
	}](t, res.Body).ID
}
