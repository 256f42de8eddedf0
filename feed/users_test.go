package feed_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/internal/server/servertest"
)

type profileBody struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	Followers int64     `json:"followers"`
	Following int64     `json:"following"`
	Clips     int64     `json:"clips"`
	Followed  bool      `json:"followed"`
}

type followsBody struct {
	Items []struct {
		User       string    `json:"user"`
		FollowedAt time.Time `json:"followed_at"`
	} `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func TestFollowEdgeCases(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.users("ada", "bo")
	for _, step := range []struct {
		name, method, path, user string
		status                   int
	}{
		{"follow", "PUT", "/v1/users/bo/follow", "ada", http.StatusNoContent},
		{"follow twice", "PUT", "/v1/users/bo/follow", "ada", http.StatusNoContent},
		{"follow yourself", "PUT", "/v1/users/ada/follow", "ada", http.StatusBadRequest},
		{"follow unknown", "PUT", "/v1/users/nobody/follow", "ada", http.StatusNotFound},
		{"follow bad id", "PUT", "/v1/users/no%20body/follow", "ada", http.StatusBadRequest},
		{"follow anonymous", "PUT", "/v1/users/bo/follow", "", http.StatusUnauthorized},
		{"unfollow unknown", "DELETE", "/v1/users/nobody/follow", "ada", http.StatusNotFound},
		{"unfollow anonymous", "DELETE", "/v1/users/bo/follow", "", http.StatusUnauthorized},
	} {
		t.Run(step.name, func(t *testing.T) {
			e.want(step.status, step.method, step.path, step.user)
		})
	}
	got := servertest.Decode[profileBody](t, e.want(http.StatusOK, "GET", "/v1/users/bo", "ada"))
	if got.Followers != 1 || !got.Followed {
		t.Errorf("bo after ada followed twice = %+v, want one follower, followed", got)
	}
	e.want(http.StatusNoContent, "DELETE", "/v1/users/bo/follow", "ada")
	e.want(http.StatusNoContent, "DELETE", "/v1/users/bo/follow", "ada") // idempotent
	got = servertest.Decode[profileBody](t, e.want(http.StatusOK, "GET", "/v1/users/bo", "ada"))
	if got.Followers != 0 || got.Followed {
		t.Errorf("bo after unfollow = %+v, want no followers", got)
	}
}

func TestProfile(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.users("ada", "bo", "cy")
	e.follow("bo", "ada")
	e.follow("cy", "ada")
	e.follow("ada", "cy")
	now := time.Now()
	e.clip("c_pub", "ada", "g", now)
	e.clip("c_pub2", "ada", "g", now)
	e.clip("c_unl", "ada", "g", now, func(c *clips.Clip) { c.Visibility = clips.Unlisted })
	e.clip("c_priv", "ada", "g", now, func(c *clips.Clip) { c.Visibility = clips.Private })
	e.clip("c_proc", "ada", "g", now, func(c *clips.Clip) { c.Status = clips.StatusProcessing })

	for _, tc := range []struct {
		viewer string
		want   profileBody
	}{
		{"ada", profileBody{ID: "ada", Followers: 2, Following: 1, Clips: 5}},
		{"bo", profileBody{ID: "ada", Followers: 2, Following: 1, Clips: 2, Followed: true}},
		{"cy", profileBody{ID: "ada", Followers: 2, Following: 1, Clips: 2, Followed: true}},
		{"dee", profileBody{ID: "ada", Followers: 2, Following: 1, Clips: 2}},
	} {
		t.Run(tc.viewer, func(t *testing.T) {
			got := servertest.Decode[profileBody](t, e.want(http.StatusOK, "GET", "/v1/users/ada", tc.viewer))
			if got.CreatedAt.IsZero() {
				t.Errorf("created_at is zero")
			}
			got.CreatedAt = time.Time{}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("profile of ada seen by %s (-want +got):\n%s", tc.viewer, diff)
			}
		})
	}
	e.want(http.StatusNotFound, "GET", "/v1/users/nobody", "ada")
	e.want(http.StatusBadRequest, "GET", "/v1/users/bad.id", "ada")
	e.want(http.StatusUnauthorized, "GET", "/v1/users/ada", "")
}

func TestFollowersPaging(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.users("star", "lonely")
	var fans []string
	for i := range 13 {
		u := fmt.Sprintf("fan%02d", i)
		fans = append(fans, u)
		e.users(u)
		e.want(http.StatusNoContent, "PUT", "/v1/users/star/follow", u)
		e.want(http.StatusNoContent, "PUT", "/v1/users/"+u+"/follow", "star")
	}
	for _, list := range []string{"followers", "following"} {
		t.Run(list, func(t *testing.T) {
			all := servertest.Decode[followsBody](t, e.want(http.StatusOK, "GET", "/v1/users/star/"+list+"?limit=200", "lonely"))
			if len(all.Items) != len(fans) || all.NextCursor != "" {
				t.Fatalf("one page of %s = %d items, next %q; want %d and none", list, len(all.Items), all.NextCursor, len(fans))
			}
			var want []string
			for _, it := range all.Items {
				want = append(want, it.User)
			}
			var got []string
			cursor := ""
			for n := 0; ; n++ {
				p := servertest.Decode[followsBody](t, e.want(http.StatusOK, "GET", "/v1/users/star/"+list+"?limit=4&cursor="+cursor, "lonely"))
				if len(p.Items) > 4 {
					t.Fatalf("page of %d items with limit 4", len(p.Items))
				}
				for _, it := range p.Items {
					got = append(got, it.User)
				}
				if p.NextCursor == "" {
					break
				}
				if n > 10 {
					t.Fatalf("too many pages")
				}
				cursor = p.NextCursor
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("paged %s (-want +got):\n%s", list, diff)
			}
		})
	}
	empty := servertest.Decode[followsBody](t, e.want(http.StatusOK, "GET", "/v1/users/lonely/followers", "star"))
	if len(empty.Items) != 0 || empty.Items == nil {
		t.Errorf("followers of lonely = %+v, want an empty list", empty)
	}
	for _, tc := range []struct {
		name, path string
		status     int
	}{
		{"unknown user", "/v1/users/nobody/followers", http.StatusNotFound},
		{"unknown user following", "/v1/users/nobody/following", http.StatusNotFound},
		{"bad cursor", "/v1/users/star/followers?cursor=%25%25", http.StatusBadRequest},
		{"cursor of another kind", "/v1/users/star/following?cursor=aTpmYW4wMQ", http.StatusBadRequest},
		{"limit zero", "/v1/users/star/followers?limit=0", http.StatusBadRequest},
		{"limit too big", "/v1/users/star/followers?limit=201", http.StatusBadRequest},
		{"limit not a number", "/v1/users/star/following?limit=ten", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.want(tc.status, "GET", tc.path, "lonely")
		})
	}
	e.want(http.StatusUnauthorized, "GET", "/v1/users/star/followers", "")
	e.want(http.StatusUnauthorized, "GET", "/v1/users/star/following", "")
}
