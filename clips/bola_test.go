package clips_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/oklog/ulid/v2"

	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/internal/server/servertest"
)

// Kinds of clip in the authorization matrix, all owned by ada.
const (
	kindPublic     = "public"
	kindUnlisted   = "unlisted"
	kindPrivate    = "private"
	kindProcessing = "processing" // public, not ready yet
	kindDeleted    = "deleted"
)

var clipKinds = []string{kindPublic, kindUnlisted, kindPrivate, kindProcessing, kindDeleted}

// seeded is a clip made for one cell of the matrix, with a comment by cy.
type seeded struct{ id, comment string }

// seed stores a clip of kind with media, a thumbnail and a comment by cy,
// straight through the store and blobs.
func (s *stack) seed(kind string) seeded {
	s.t.Helper()
	ctx := context.Background()
	for _, u := range []string{"ada", "bo", "cy"} {
		if _, err := s.db.EnsureUser(ctx, u); err != nil {
			s.t.Fatalf("EnsureUser: %v", err)
		}
	}
	blobs, err := clips.NewDir(s.blobs)
	if err != nil {
		s.t.Fatal(err)
	}
	id := "c_" + ulid.Make().String()
	media := fakeMP4(2000)
	for _, key := range []string{"clips/" + id + "/media", "clips/" + id + "/thumb.jpg"} {
		if _, err := blobs.Put(ctx, key, bytes.NewReader(media)); err != nil {
			s.t.Fatalf("Put: %v", err)
		}
	}
	c := clips.Clip{ID: id, Owner: "ada", Title: "t", Game: "valorant", Visibility: clips.Public, Status: clips.StatusReady,
		SizeBytes: 2000, ContentType: clips.TypeMP4, SHA256: sha(media), MediaKey: "clips/" + id + "/media",
		ThumbnailKey: "clips/" + id + "/thumb.jpg", CreatedAt: time.Now()}
	switch kind {
	case kindUnlisted:
		c.Visibility = clips.Unlisted
	case kindPrivate:
		c.Visibility = clips.Private
	case kindProcessing:
		c.Status = clips.StatusProcessing
	}
	if err := s.db.CreateClip(ctx, c); err != nil {
		s.t.Fatalf("CreateClip: %v", err)
	}
	cm := clips.Comment{ID: ulid.Make().String(), ClipID: id, Author: "cy", Body: "gg"}
	if err := s.db.AddComment(ctx, cm); err != nil {
		s.t.Fatalf("AddComment: %v", err)
	}
	if kind == kindDeleted {
		if err := s.db.DeleteClip(ctx, id); err != nil {
			s.t.Fatalf("DeleteClip: %v", err)
		}
	}
	return seeded{id: id, comment: cm.ID}
}

// Route classes of the matrix.
const (
	classRead   = iota // anyone who may view the clip
	classOwner         // the owner only (the comment route: its author too)
	classEngage        // any signed-in user who may view the clip
)

func TestAuthorizationMatrix(t *testing.T) {
	s := newStack(t, stackOpts{})
	routes := []struct {
		method, path string
		class        int
		ok           int // the status for a caller who may
		body         any
		header       map[string]string
	}{
		{"GET", "/v1/clips/{id}", classRead, 200, nil, nil},
		{"GET", "/v1/clips/{id}/media", classRead, 200, nil, nil},
		{"GET", "/v1/clips/{id}/thumbnail", classRead, 200, nil, nil},
		{"GET", "/v1/clips/{id}/comments", classRead, 200, nil, nil},
		{"PATCH", "/v1/clips/{id}", classOwner, 200, map[string]any{"title": "renamed"}, nil},
		{"DELETE", "/v1/clips/{id}", classOwner, 204, nil, nil},
		// The seeded clips have media, so the owner's upload conflicts.
		{"PUT", "/v1/clips/{id}/media", classOwner, 409, fakeMP4(1000), map[string]string{"Content-Type": "video/mp4"}},
		{"POST", "/v1/uploads", classOwner, 409, nil, map[string]string{"Tus-Resumable": "1.0.0", "Upload-Length": "100", "Upload-Metadata": "clip_id {b64id}"}},
		{"DELETE", "/v1/clips/{id}/comments/{comment}", classOwner, 204, nil, nil},
		{"PUT", "/v1/clips/{id}/like", classEngage, 200, nil, nil},
		{"DELETE", "/v1/clips/{id}/like", classEngage, 200, nil, nil},
		{"POST", "/v1/clips/{id}/views", classEngage, 204, map[string]any{"watched_ms": 1500}, nil},
		{"POST", "/v1/clips/{id}/comments", classEngage, 201, map[string]any{"body": "nice"}, nil},
	}
	actors := []string{"ada", "bo", ""} // owner, another user, anonymous
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			notFound := map[string]string{} // kind -> the 404 detail another user got
			for _, kind := range clipKinds {
				for _, actor := range actors {
					cl := s.seed(kind)
					path := strings.NewReplacer("{id}", cl.id, "{comment}", cl.comment).Replace(rt.path)
					h := map[string]string{}
					for k, v := range rt.header {
						h[k] = strings.ReplaceAll(v, "{b64id}", b64(cl.id))
					}
					want := expect(rt.class, rt.ok, kind, actor)
					r := s.srv.Do(s.t, servertest.Request{Method: rt.method, Path: path, Token: actor, Body: rt.body, Header: h})
					if r.Status != want {
						t.Errorf("%s clip as %q: status %d, want %d; body %s", kind, actor, r.Status, want, r.Body)
						continue
					}
					if want >= 400 {
						p := servertest.WantProblem(t, r, want)
						if actor == "bo" && want == 404 && expect(classRead, 200, kind, actor) == 404 {
							notFound[kind] = p.Detail
						}
					}
				}
			}
			// A clip another user may not see reads exactly like one that
			// does not exist.
			for kind, detail := range notFound {
				if detail != notFound[kindDeleted] {
					t.Errorf("404 detail for a %s clip %q differs from a deleted clip's %q", kind, detail, notFound[kindDeleted])
				}
			}
		})
	}
	t.Run("GET /v1/users/{id}/clips", func(t *testing.T) {
		byKind := map[string]string{}
		for _, kind := range clipKinds {
			byKind[kind] = s.seed(kind).id
		}
		for _, actor := range actors {
			var want []string
			for _, kind := range clipKinds {
				if kind == kindPublic || (actor == "ada" && kind != kindDeleted) {
					want = append(want, byKind[kind])
				}
			}
			listed := map[string]bool{}
			cursor := ""
			for {
				r := s.srv.Want(s.t, 200, servertest.Request{Method: "GET", Path: "/v1/users/ada/clips?limit=7&cursor=" + cursor, Token: actor})
				page := servertest.Decode[struct {
					Clips      []clips.Resource `json:"clips"`
					NextCursor *string          `json:"next_cursor"`
				}](t, r.Body)
				for _, c := range page.Clips {
					listed[c.ID] = true
				}
				if page.NextCursor == nil {
					break
				}
				cursor = *page.NextCursor
			}
			var got []string
			for _, kind := range clipKinds {
				if listed[byKind[kind]] {
					got = append(got, byKind[kind])
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("clips listed to %q (-want +got):\n%s", actor, diff)
			}
		}
		s.srv.Want(s.t, 400, servertest.Request{Method: "GET", Path: "/v1/users/ada/clips?cursor=nonsense", Token: "bo"})
		s.srv.Want(s.t, 400, servertest.Request{Method: "GET", Path: "/v1/users/ada/clips?limit=x"})
		s.srv.Want(s.t, 400, servertest.Request{Method: "GET", Path: "/v1/users/a%20b/clips"})
		s.srv.Want(s.t, 401, servertest.Request{Method: "GET", Path: "/v1/users/ada/clips", Token: "bad"})
	})
}

// expect is the status a caller gets on a clip of kind.
func expect(class, ok int, kind, actor string) int {
	owner := actor == "ada"
	visible := kind != kindDeleted && (owner || kind == kindPublic || kind == kindUnlisted)
	switch {
	case class != classRead && actor == "":
		return http.StatusUnauthorized
	case class == classOwner && owner && kind != kindDeleted:
		return ok
	case class == classOwner:
		return http.StatusNotFound
	case visible:
		return ok
	}
	return http.StatusNotFound
}

func TestCommentDeleteRules(t *testing.T) {
	s := newStack(t, stackOpts{})
	cl := s.seed(kindPublic)
	other := s.seed(kindPublic)
	base := "/v1/clips/" + cl.id + "/comments/"
	// The comment's author deletes it; the same id under another clip is 404.
	s.srv.Want(s.t, 404, servertest.Request{Method: "DELETE", Path: "/v1/clips/" + other.id + "/comments/" + cl.comment, Token: "cy"})
	s.srv.Want(s.t, 404, servertest.Request{Method: "DELETE", Path: base + cl.comment, Token: "bo"})
	s.srv.Want(s.t, 204, servertest.Request{Method: "DELETE", Path: base + cl.comment, Token: "cy"})
	s.srv.Want(s.t, 404, servertest.Request{Method: "DELETE", Path: base + cl.comment, Token: "cy"})
	// Comments page oldest first with a cursor.
	var want []string
	for i := range 5 {
		r := s.srv.Want(s.t, 201, servertest.Request{Method: "POST", Path: "/v1/clips/" + cl.id + "/comments", Token: "bo", Body: map[string]any{"body": fmt.Sprint("gg ", i)}})
		want = append(want, servertest.Decode[struct{ ID string }](t, r.Body).ID)
	}
	var got []string
	cursor := ""
	for {
		r := s.srv.Want(s.t, 200, servertest.Request{Method: "GET", Path: "/v1/clips/" + cl.id + "/comments?limit=2&cursor=" + cursor})
		page := servertest.Decode[struct {
			Comments []struct {
				ID, Author, Body string
			} `json:"comments"`
			NextCursor *string `json:"next_cursor"`
		}](t, r.Body)
		for _, c := range page.Comments {
			got = append(got, c.ID)
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("paged comments (-want +got):\n%s", diff)
	}
	if c := s.get("bo", cl.id); c.CommentCount != 5 {
		t.Errorf("comment_count = %d, want 5", c.CommentCount)
	}
	for _, body := range []any{map[string]any{"body": ""}, map[string]any{"body": strings.Repeat("x", 2001)}, map[string]any{"text": "x"}, "not json"} {
		s.srv.Want(s.t, 400, servertest.Request{Method: "POST", Path: "/v1/clips/" + cl.id + "/comments", Token: "bo", Body: body})
	}
}

func TestCreateAndEditValidation(t *testing.T) {
	s := newStack(t, stackOpts{})
	ok := map[string]any{"title": "ace", "game": "valorant"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range ok {
			m[kk] = vv
		}
		m[k] = v
		return m
	}
	for _, tc := range []struct {
		name string
		body any
	}{
		{"empty title", with("title", "  ")},
		{"long title", with("title", strings.Repeat("é", 101))},
		{"game not a slug", with("game", "Valorant!")},
		{"no game", map[string]any{"title": "x"}},
		{"too many tags", with("tags", slices.Repeat([]string{"a"}, 11))},
		{"bad tag", with("tags", []string{"no spaces"})},
		{"bad visibility", with("visibility", "friends")},
		{"unknown field", with("owner", "bo")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.srv.Want(s.t, 400, servertest.Request{Method: "POST", Path: "/v1/clips", Token: "ada", Body: tc.body})
		})
	}
	s.srv.Want(s.t, 401, servertest.Request{Method: "POST", Path: "/v1/clips", Body: ok})
	s.srv.Want(s.t, 415, servertest.Request{Method: "POST", Path: "/v1/clips", Token: "ada", Body: []byte(`{}`), Header: map[string]string{"Content-Type": "text/plain"}})
	s.srv.Want(s.t, 413, servertest.Request{Method: "POST", Path: "/v1/clips", Token: "ada", Body: bytes.Repeat([]byte(" "), 2<<20), Header: map[string]string{"Content-Type": "application/json"}})

	c := s.create("ada", "")
	if c.Visibility != clips.Public || !slices.Equal(c.Tags, []string{"clutch", "1v5"}) || !strings.HasPrefix(c.ID, "c_") {
		t.Errorf("created clip: visibility %q tags %v id %q", c.Visibility, c.Tags, c.ID)
	}
	r := s.srv.Want(s.t, 200, servertest.Request{Method: "PATCH", Path: "/v1/clips/" + c.ID, Token: "ada",
		Body: map[string]any{"title": " renamed ", "tags": []string{"eco", "ECO"}, "visibility": "unlisted"}})
	got := servertest.Decode[clips.Resource](t, r.Body)
	if got.Title != "renamed" || !slices.Equal(got.Tags, []string{"eco"}) || got.Visibility != clips.Unlisted || got.Status != clips.StatusUploading {
		t.Errorf("after PATCH: %+v", got)
	}
	s.srv.Want(s.t, 400, servertest.Request{Method: "PATCH", Path: "/v1/clips/" + c.ID, Token: "ada", Body: map[string]any{"visibility": "everyone"}})
	s.srv.Want(s.t, 400, servertest.Request{Method: "PATCH", Path: "/v1/clips/" + c.ID, Token: "ada", Body: map[string]any{"status": "ready"}})
	s.srv.Want(s.t, 400, servertest.Request{Method: "POST", Path: "/v1/clips/" + c.ID + "/views", Token: "ada", Body: map[string]any{"watched_ms": -1}})
	s.srv.Want(s.t, 400, servertest.Request{Method: "POST", Path: "/v1/clips/" + c.ID + "/views", Token: "ada", Body: map[string]any{}})
	s.srv.Want(s.t, 404, servertest.Request{Method: "GET", Path: "/v1/clips/not-a-clip"})
	s.srv.Want(s.t, 404, servertest.Request{Method: "GET", Path: "/v1/clips/c_" + strings.Repeat("z", 80)})

	// Deleting removes the row and the blobs.
	if r := s.upload("ada", c.ID, fakeMP4(1000), ""); r.Status != 200 {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	s.waitStatus("ada", c.ID, clips.StatusReady)
	s.srv.Want(s.t, 204, servertest.Request{Method: "DELETE", Path: "/v1/clips/" + c.ID, Token: "ada"})
	s.srv.Want(s.t, 404, servertest.Request{Method: "GET", Path: "/v1/clips/" + c.ID, Token: "ada"})
	if files := s.blobFiles(); len(files) != 0 {
		t.Errorf("blobs left after DELETE: %v", files)
	}
}
