package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/partyline/partyline/internal/server"
	"github.com/partyline/partyline/internal/server/servertest"
	"github.com/partyline/partyline/realtime/client"
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
	call(t, srv, "PUT", "/v1/rooms/"+private+"/members/u_member", "u_owner", "", http.StatusOK)

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
			c := dial(t, srv, tc.user)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			id, offset, err := c.Publish(ctx, tc.channel, map[string]string{"text": "gg"}, "")
			if got := client.ErrorCode(err); got != tc.want {
				t.Fatalf("pub: error code %q (%v), want %q", got, err, tc.want)
			}
			if tc.want == "" && (id == "" || offset == 0) {
				t.Fatalf("pub: msg id %q offset %d", id, offset)
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
			body := fmt.Sprintf(`{"channel":%q,"kind":"notice","data":{"text":"maintenance"}}`, tc.channel)
			call(t, srv, "POST", "/v1/server/publish", servertest.APIKey, body, tc.status)
		}
		// The room's message went through chat: it is stored, as from the
		// server.
		c := dial(t, srv, "u_member")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		msgs, _, err := c.History(ctx, "room:"+private, "", 50)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, m := range msgs {
			found = found || m.From == "system" && strings.Contains(string(m.Data), "maintenance")
		}
		if !found {
			t.Fatalf("the server API's room message is not in the room's history: %+v", msgs)
		}
	})
}

// dial connects to srv as user, without reconnecting.
func dial(t *testing.T, srv *servertest.Server, user string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{URL: srv.URL, DisableReconnect: true,
		Token: func(context.Context) (string, error) { return user, nil }})
	if err != nil {
		t.Fatalf("dial as %s: %v", user, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// createRoom creates a room through REST and returns its id.
func createRoom(t *testing.T, srv *servertest.Server, owner, visibility string) string {
	t.Helper()
	b := call(t, srv, "POST", "/v1/rooms", owner, fmt.Sprintf(`{"name":"squad","visibility":%q}`, visibility), http.StatusCreated)
	var room struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &room); err != nil || room.ID == "" {
		t.Fatalf("create room: %s (%v)", b, err)
	}
	return room.ID
}

// call sends a request with a bearer token and fails unless the status is
// want; it returns the body.
func call(t *testing.T, srv *servertest.Server, method, path, token, body string, want int) []byte {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := srv.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, res.StatusCode, b, want)
	}
	return b
}
