package clips_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/internal/server/servertest"
)

// TestEngagementHooks checks that stored views, new likes and comments
// reach the Observer, as the feed needs, and that a repeated like
// or a refused request does not.
func TestEngagementHooks(t *testing.T) {
	var mu sync.Mutex
	var got []string
	s := newStack(t, stackOpts{edit: func(o *clips.Options) {
		o.Observer = observerFuncs{
			event: func(ev clips.Event) {
				mu.Lock()
				defer mu.Unlock()
				if ev.At.IsZero() {
					t.Errorf("event %+v without a time", ev)
				}
				got = append(got, ev.Kind+" "+ev.UserID)
			},
			comment: func(c clips.Comment) {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, "comment "+c.Author+" "+c.Body)
			},
		}
	}})
	c := s.create("u_owner", "public")
	s.upload("u_owner", c.ID, fakeMP4(4096), "video/mp4")
	s.waitStatus("u_owner", c.ID, "ready")

	s.srv.Want(s.t, http.StatusNoContent, servertest.Request{Method: "POST", Path: "/v1/clips/" + c.ID + "/views", Token: "u_fan", Body: map[string]any{"watched_ms": 1500}})
	s.srv.Want(s.t, http.StatusOK, servertest.Request{Method: "PUT", Path: "/v1/clips/" + c.ID + "/like", Token: "u_fan"})
	s.srv.Want(s.t, http.StatusOK, servertest.Request{Method: "PUT", Path: "/v1/clips/" + c.ID + "/like", Token: "u_fan"}) // already liked
	s.srv.Want(s.t, http.StatusCreated, servertest.Request{Method: "POST", Path: "/v1/clips/" + c.ID + "/comments", Token: "u_fan", Body: map[string]any{"body": "gg"}})
	s.srv.Want(s.t, http.StatusBadRequest, servertest.Request{Method: "POST", Path: "/v1/clips/" + c.ID + "/views", Token: "u_fan", Body: map[string]any{"watched_ms": -1}})

	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"view u_fan", "like u_fan", "comment u_fan gg"}, got); diff != "" {
		t.Errorf("hooks (-want +got):\n%s", diff)
	}
}

// observerFuncs is a clips.Observer made of two functions.
type observerFuncs struct {
	event   func(clips.Event)
	comment func(clips.Comment)
}

func (o observerFuncs) Observe(ev clips.Event)         { o.event(ev) }
func (o observerFuncs) ObserveComment(c clips.Comment) { o.comment(c) }
