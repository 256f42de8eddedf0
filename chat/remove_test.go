package chat_test

import (
	"net/http"
	"testing"

	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime/wire"
)

// A member taken out of a private room stops receiving it at once: the
// subscription ends with an unsubscribed notification.
func TestRemovedMemberStopsReceiving(t *testing.T) {
	s := newStack(t, nil)
	room := s.createRoom("u_ann", "secret", "private", "u_bob")
	ch := "room:" + room
	ann, bob := s.dial("u_ann"), s.dial("u_bob")
	ann.sub(ch)
	bob.sub(ch)
	first := ann.pub(ch, map[string]string{"text": "before"})
	bob.waitMsg(ch, first.Offset)

	s.wantStatus(http.StatusNoContent, "DELETE", "/v1/rooms/"+room+"/members/u_bob", "u_ann", nil)
	testenv.Eventually(t, "bob's unsubscribed notification", func() bool {
		for _, m := range bob.msgsOn(ch) {
			if m.Type == wire.TypeUnsubscribed && m.Reason == "removed" {
				return true
			}
		}
		return false
	})
	second := ann.pub(ch, map[string]string{"text": "after"})
	ann.waitMsg(ch, second.Offset)
	bob.OK(map[string]any{"type": "ping"}) // anything for bob is queued ahead of this reply
	for _, m := range bob.msgsOn(ch) {
		if m.Type == wire.TypeMsg && m.Offset == second.Offset {
			t.Fatal("a removed member still received the room")
		}
	}
	bob.WantError(wire.CodeForbidden, map[string]any{"type": "sub", "channel": ch})
}
