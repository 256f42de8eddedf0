package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/store/internal/keyset"
)

// newClip returns a ready public clip of owner with every field set.
func newClip(id, owner string, at time.Time) clips.Clip {
	return clips.Clip{
		ID: id, Owner: owner, Title: "ace " + id, Game: "valorant", Tags: []string{"clutch", "1v5"},
		Visibility: clips.Public, Status: clips.StatusReady, SizeBytes: 1 << 20, ContentType: "video/mp4",
		SHA256: "ab12", DurationMS: 30500, Width: 1920, Height: 1080,
		MediaKey: "media/" + id, ThumbnailKey: "thumb/" + id, CreatedAt: at, UpdatedAt: at,
	}
}

// stored is c as a store returns it right after CreateClip.
func stored(c clips.Clip) clips.Clip {
	c.CreatedAt, c.UpdatedAt = ms(c.CreatedAt), ms(c.UpdatedAt)
	c.Likes, c.Views, c.Comments = 0, 0, 0
	if c.Tags == nil {
		c.Tags = []string{}
	}
	return c
}

func getClip(t *testing.T, s Store, id string) clips.Clip {
	t.Helper()
	c, err := s.GetClip(t.Context(), id)
	must(t, "GetClip", err)
	return c
}

func testClips(t *testing.T, s Store) {
	ctx := t.Context()
	ensureUsers(t, s, "ada", "bo")
	c := newClip("c_1", "ada", base)
	c.Likes, c.Views, c.Comments = 5, 6, 7 // counters belong to the store
	must(t, "CreateClip", s.CreateClip(ctx, c))

	t.Run("GetClip", func(t *testing.T) {
		if diff := cmp.Diff(stored(c), getClip(t, s, "c_1")); diff != "" {
			t.Errorf("GetClip (-want +got):\n%s", diff)
		}
	})
	t.Run("NilTagsReadBackEmpty", func(t *testing.T) {
		c := newClip("c_notags", "ada", base)
		c.Tags = nil
		must(t, "CreateClip", s.CreateClip(ctx, c))
		got := getClip(t, s, "c_notags")
		if got.Tags == nil || len(got.Tags) != 0 {
			t.Errorf("Tags = %#v, want an empty non-nil slice", got.Tags)
		}
	})
	t.Run("UpdateClip", func(t *testing.T) {
		_, err := s.Like(ctx, "c_1", "bo")
		must(t, "Like", err)
		u := getClip(t, s, "c_1")
		u.Title, u.Game, u.Tags = "renamed", "cs2", []string{"eco"}
		u.Visibility, u.Status, u.FailReason = clips.Unlisted, clips.StatusFailed, "ffprobe: bad codec"
		u.SizeBytes, u.ContentType, u.SHA256, u.DurationMS = 99, "video/webm", "cd34", 1000
		u.Width, u.Height, u.MediaKey, u.ThumbnailKey = 640, 360, "m2", ""
		u.UpdatedAt = base.Add(time.Hour)
		want := u
		want.UpdatedAt = ms(u.UpdatedAt)
		// Fields UpdateClip must leave alone.
		u.Owner, u.Likes, u.Views, u.CreatedAt = "bo", 100, 100, base.Add(-time.Hour)
		must(t, "UpdateClip", s.UpdateClip(ctx, u))
		if diff := cmp.Diff(want, getClip(t, s, "c_1")); diff != "" {
			t.Errorf("after UpdateClip (-want +got):\n%s", diff)
		}
		u.UpdatedAt = time.Time{}
		must(t, "UpdateClip", s.UpdateClip(ctx, u))
		if got := getClip(t, s, "c_1"); time.Since(got.UpdatedAt) > time.Minute {
			t.Errorf("UpdateClip with a zero UpdatedAt set it to %v, want now", got.UpdatedAt)
		}
	})
	t.Run("DeleteClip", func(t *testing.T) {
		d := newClip("c_del", "ada", base)
		must(t, "CreateClip", s.CreateClip(ctx, d))
		_, err := s.Like(ctx, "c_del", "bo")
		must(t, "Like", err)
		must(t, "AddComment", s.AddComment(ctx, clips.Comment{ID: idAt(base), ClipID: "c_del", Author: "bo", Body: "gg"}))
		must(t, "RecordEvent", s.RecordEvent(ctx, clips.Event{ClipID: "c_del", UserID: "bo", Kind: clips.EventView, At: base}))
		must(t, "DeleteClip", s.DeleteClip(ctx, "c_del"))
		_, err = s.GetClip(ctx, "c_del")
		checkErr(t, "GetClip deleted", err, partyline.ErrNotFound)
		checkErr(t, "DeleteClip twice", s.DeleteClip(ctx, "c_del"), partyline.ErrNotFound)
		// Re-created under the same id, nothing of the old clip remains.
		must(t, "CreateClip again", s.CreateClip(ctx, d))
		if diff := cmp.Diff(stored(d), getClip(t, s, "c_del")); diff != "" {
			t.Errorf("re-created clip carries old counters (-want +got):\n%s", diff)
		}
		cs, _, err := s.ClipComments(ctx, "c_del", "", 10)
		must(t, "ClipComments", err)
		if len(cs) != 0 {
			t.Errorf("comments survived DeleteClip: %+v", cs)
		}
		created, err := s.Like(ctx, "c_del", "bo")
		must(t, "Like", err)
		if !created {
			t.Errorf("a like survived DeleteClip")
		}
	})
	t.Run("Errors", func(t *testing.T) {
		bad := func(f func(*clips.Clip)) clips.Clip {
			c := newClip("c_bad", "ada", base)
			f(&c)
			return c
		}
		for _, tc := range []struct {
			name string
			call func() error
			want error
		}{
			{"CreateClip duplicate", func() error { return s.CreateClip(ctx, newClip("c_1", "bo", base)) }, partyline.ErrConflict},
			{"CreateClip unknown owner", func() error { return s.CreateClip(ctx, newClip("c_x", "nobody", base)) }, partyline.ErrNotFound},
			{"CreateClip empty id", func() error { return s.CreateClip(ctx, bad(func(c *clips.Clip) { c.ID = "" })) }, partyline.ErrInvalid},
			{"CreateClip bad visibility", func() error {
				return s.CreateClip(ctx, bad(func(c *clips.Clip) { c.Visibility = "friends" }))
			}, partyline.ErrInvalid},
			{"CreateClip bad status", func() error { return s.CreateClip(ctx, bad(func(c *clips.Clip) { c.Status = "done" })) }, partyline.ErrInvalid},
			{"GetClip missing", func() error { _, err := s.GetClip(ctx, "missing"); return err }, partyline.ErrNotFound},
			{"UpdateClip missing", func() error { return s.UpdateClip(ctx, newClip("missing", "ada", base)) }, partyline.ErrNotFound},
			{"UpdateClip bad status", func() error {
				c := newClip("c_1", "ada", base)
				c.Status = "done"
				return s.UpdateClip(ctx, c)
			}, partyline.ErrInvalid},
			{"DeleteClip missing", func() error { return s.DeleteClip(ctx, "missing") }, partyline.ErrNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) { checkErr(t, tc.name, tc.call(), tc.want) })
		}
	})
}

func testEngagement(t *testing.T, s Store) {
	ctx := t.Context()
	ensureUsers(t, s, "ada", "bo", "cy")
	must(t, "CreateClip", s.CreateClip(ctx, newClip("c_1", "ada", base)))
	counters := func(t *testing.T, likes, views, comments int64) {
		t.Helper()
		c := getClip(t, s, "c_1")
		got := [3]int64{c.Likes, c.Views, c.Comments}
		if want := [3]int64{likes, views, comments}; got != want {
			t.Errorf("likes, views, comments = %v, want %v", got, want)
		}
	}

	t.Run("Likes", func(t *testing.T) {
		for _, step := range []struct {
			op, user  string
			wantOK    bool
			wantLikes int64
		}{
			{"like", "bo", true, 1},
			{"like", "bo", false, 1},
			{"like", "cy", true, 2},
			{"unlike", "bo", true, 1},
			{"unlike", "bo", false, 1},
			{"unlike", "ada", false, 1},
		} {
			var (
				ok  bool
				err error
			)
			if step.op == "like" {
				ok, err = s.Like(ctx, "c_1", step.user)
			} else {
				ok, err = s.Unlike(ctx, "c_1", step.user)
			}
			must(t, step.op, err)
			if ok != step.wantOK {
				t.Errorf("%s by %s = %v, want %v", step.op, step.user, ok, step.wantOK)
			}
			counters(t, step.wantLikes, 0, 0)
		}
		removed, err := s.Unlike(ctx, "missing", "bo")
		must(t, "Unlike missing clip", err)
		if removed {
			t.Errorf("Unlike of a missing clip removed something")
		}
	})
	t.Run("Comments", func(t *testing.T) {
		c := clips.Comment{ID: idAt(base), ClipID: "c_1", Author: "bo", Body: "nice", CreatedAt: base}
		must(t, "AddComment", s.AddComment(ctx, c))
		counters(t, 1, 0, 1)
		got, next, err := s.ClipComments(ctx, "c_1", "", 10)
		must(t, "ClipComments", err)
		c.CreatedAt = ms(base)
		if diff := cmp.Diff([]clips.Comment{c}, got); diff != "" || next != "" {
			t.Errorf("ClipComments next %q, (-want +got):\n%s", next, diff)
		}
		for _, tc := range []struct {
			name string
			c    clips.Comment
			want error
		}{
			{"duplicate id", clips.Comment{ID: c.ID, ClipID: "c_1", Author: "cy", Body: "x"}, partyline.ErrConflict},
			{"missing clip", clips.Comment{ID: idAt(base.Add(time.Second)), ClipID: "missing", Author: "bo"}, partyline.ErrNotFound},
			{"unknown author", clips.Comment{ID: idAt(base.Add(time.Second)), ClipID: "c_1", Author: "nobody"}, partyline.ErrNotFound},
			{"empty id", clips.Comment{ClipID: "c_1", Author: "bo"}, partyline.ErrInvalid},
		} {
			t.Run(tc.name, func(t *testing.T) {
				checkErr(t, "AddComment", s.AddComment(ctx, tc.c), tc.want)
				counters(t, 1, 0, 1)
			})
		}
	})
	t.Run("Events", func(t *testing.T) {
		for _, tc := range []struct {
			kind      string
			want      error
			wantViews int64
		}{
			{clips.EventView, nil, 1},
			{clips.EventSkip, nil, 1},
			{clips.EventShare, nil, 1},
			{clips.EventLike, nil, 1},
			{clips.EventView, nil, 2},
			{"rewatch", partyline.ErrInvalid, 2},
		} {
			t.Run(tc.kind, func(t *testing.T) {
				err := s.RecordEvent(ctx, clips.Event{ClipID: "c_1", UserID: "cy", Kind: tc.kind, WatchedMS: 1200, At: base})
				checkErr(t, "RecordEvent", err, tc.want)
				counters(t, 1, tc.wantViews, 1)
			})
		}
		err := s.RecordEvent(ctx, clips.Event{ClipID: "missing", UserID: "cy", Kind: clips.EventView})
		checkErr(t, "RecordEvent missing clip", err, partyline.ErrNotFound)
	})
	t.Run("LikeErrors", func(t *testing.T) {
		_, err := s.Like(ctx, "missing", "bo")
		checkErr(t, "Like missing clip", err, partyline.ErrNotFound)
		_, err = s.Like(ctx, "c_1", "nobody")
		checkErr(t, "Like unknown user", err, partyline.ErrNotFound)
		counters(t, 1, 2, 1)
	})
}

func testClipPaging(t *testing.T, s Store) {
	ctx := t.Context()
	ensureUsers(t, s, "ada", "bo")
	clipID := func(i int) string { return "c_" + idAt(base.Add(time.Duration(i)*time.Second)) }
	var want []string // newest first
	for i := range 23 {
		id := clipID(i)
		must(t, "CreateClip", s.CreateClip(ctx, newClip(id, "ada", base.Add(time.Duration(i)*time.Second))))
		want = append([]string{id}, want...)
	}
	must(t, "CreateClip", s.CreateClip(ctx, newClip(clipID(100), "bo", base))) // another owner, never listed

	userClips := func(t *testing.T, limit int, during func(page int)) []string {
		t.Helper()
		return pageAll(t, func(cursor string) ([]string, string, error) {
			cs, next, err := s.UserClips(ctx, "ada", cursor, limit)
			return clipIDs(cs), next, err
		}, during)
	}
	checkPages(t, "UserClips", want, userClips, 1, 5, 23, 200)
	t.Run("UserClipsDefaultLimit", func(t *testing.T) {
		// Fewer clips than the default page: limit 0 lists them all at once.
		cs, next, err := s.UserClips(ctx, "ada", "", 0)
		must(t, "UserClips", err)
		if len(cs) != len(want) || next != "" {
			t.Errorf("UserClips limit 0 = %d clips, next %q; want all %d and no next", len(cs), next, len(want))
		}
	})
	t.Run("UserClipsStableUnderInserts", func(t *testing.T) {
		got := userClips(t, 4, func(page int) {
			id := clipID(1000 + page)
			must(t, "CreateClip", s.CreateClip(ctx, newClip(id, "ada", base.Add(time.Hour))))
		})
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("clips created while paging disturbed later pages (-want +got):\n%s", diff)
		}
	})

	// 205 comments, oldest first.
	var comments []string
	for i := range 205 {
		c := clips.Comment{ID: idAt(base.Add(time.Duration(i) * time.Millisecond)), ClipID: want[0], Author: "bo", Body: "gg"}
		must(t, "AddComment", s.AddComment(ctx, c))
		comments = append(comments, c.ID)
	}
	clipComments := func(t *testing.T, limit int, during func(page int)) []string {
		t.Helper()
		return pageAll(t, func(cursor string) ([]string, string, error) {
			cs, next, err := s.ClipComments(ctx, want[0], cursor, limit)
			return keysOf(cs, func(c clips.Comment) string { return c.ID }), next, err
		}, during)
	}
	checkPages(t, "ClipComments", comments, clipComments, 7, 41, 200)
	t.Run("ClipCommentsStableUnderInserts", func(t *testing.T) {
		var added []string
		got := clipComments(t, 50, func(page int) {
			c := clips.Comment{ID: idAt(time.Now()), ClipID: want[0], Author: "bo", Body: "late"}
			must(t, "AddComment", s.AddComment(ctx, c))
			added = append(added, c.ID)
		})
		// Oldest first, so new comments come after every earlier one.
		if diff := cmp.Diff(append(comments, added...), got); diff != "" {
			t.Errorf("comments added while paging (-want +got):\n%s", diff)
		}
	})
	t.Run("Clamp", func(t *testing.T) {
		for _, tc := range []struct{ limit, want int }{{0, 50}, {-1, 50}, {1000, 200}} {
			cs, next, err := s.ClipComments(ctx, want[0], "", tc.limit)
			must(t, "ClipComments", err)
			if len(cs) != tc.want || next == "" {
				t.Errorf("ClipComments limit %d: %d comments, next %q; want %d and a next cursor", tc.limit, len(cs), next, tc.want)
			}
		}
	})
	t.Run("InvalidCursor", func(t *testing.T) {
		// Well formed cursors of the wrong kind are invalid too.
		for _, cursor := range []string{"!!not base64!!", "Zm9v", keyset.EncodeTimeID(base, want[0]), keyset.EncodeID("")} {
			_, _, err := s.UserClips(ctx, "ada", cursor, 5)
			checkErr(t, "UserClips cursor "+cursor, err, partyline.ErrInvalid)
			_, _, err = s.ClipComments(ctx, want[0], cursor, 5)
			checkErr(t, "ClipComments cursor "+cursor, err, partyline.ErrInvalid)
		}
	})
}

// checkPages checks, in a subtest named "<what>Limit<limit>" for each
// limit, that paging through what with that limit lists want.
func checkPages(t *testing.T, what string, want []string, pages func(t *testing.T, limit int, during func(page int)) []string, limits ...int) {
	t.Helper()
	for _, limit := range limits {
		t.Run(fmt.Sprintf("%sLimit%d", what, limit), func(t *testing.T) {
			if diff := cmp.Diff(want, pages(t, limit, nil)); diff != "" {
				t.Errorf("paged %s (-want +got):\n%s", what, diff)
			}
		})
	}
}

// pageAll follows next cursors from the first page to the last, calling
// during (when not nil) after each page but the last, and returns every key
// seen in order.
func pageAll(t *testing.T, list func(cursor string) (keys []string, next string, err error), during func(page int)) []string {
	t.Helper()
	var (
		all    []string
		cursor string
	)
	for page := 1; ; page++ {
		keys, next, err := list(cursor)
		must(t, "list", err)
		all = append(all, keys...)
		if next == "" {
			return all
		}
		if len(keys) == 0 {
			t.Fatalf("page %d is empty but has a next cursor", page)
		}
		if page > 1000 {
			t.Fatalf("no last page after 1000 pages")
		}
		cursor = next
		if during != nil {
			during(page)
		}
	}
}

func testClipWrites(t *testing.T, s Store) {
	ctx := t.Context()
	ensureUsers(t, s, "ada", "bo")
	up := newClip("c_up", "ada", base)
	up.Status, up.SizeBytes, up.ContentType, up.SHA256, up.DurationMS = clips.StatusUploading, 0, "", "", 0
	up.Width, up.Height, up.MediaKey, up.ThumbnailKey = 0, 0, "", ""
	must(t, "CreateClip", s.CreateClip(ctx, up))

	t.Run("EditClip", func(t *testing.T) {
		e := getClip(t, s, "c_up")
		e.Title, e.Game, e.Tags, e.Visibility = "edited", "cs2", []string{"eco"}, clips.Private
		e.UpdatedAt = base.Add(time.Minute)
		want := e
		want.UpdatedAt = ms(e.UpdatedAt)
		// Fields EditClip must leave alone.
		e.Status, e.MediaKey, e.SHA256, e.Likes = clips.StatusReady, "sneaky", "ff", 9
		must(t, "EditClip", s.EditClip(ctx, e))
		if diff := cmp.Diff(want, getClip(t, s, "c_up")); diff != "" {
			t.Errorf("after EditClip (-want +got):\n%s", diff)
		}
		e.Visibility = clips.Public
		e.UpdatedAt = time.Time{}
		must(t, "EditClip", s.EditClip(ctx, e))
	})
	t.Run("TransitionClip", func(t *testing.T) {
		c := getClip(t, s, "c_up")
		c.Status, c.SizeBytes, c.ContentType, c.SHA256, c.MediaKey = clips.StatusProcessing, 42, "video/mp4", "ab", "m/1"
		c.UpdatedAt = base.Add(2 * time.Minute)
		want := c
		want.UpdatedAt = ms(c.UpdatedAt)
		// Fields TransitionClip must leave alone.
		c.Title, c.Visibility, c.Tags = "sneaky", clips.Private, []string{"x"}
		must(t, "TransitionClip", s.TransitionClip(ctx, c, clips.StatusUploading))
		if diff := cmp.Diff(want, getClip(t, s, "c_up")); diff != "" {
			t.Errorf("after TransitionClip (-want +got):\n%s", diff)
		}
		// Only once: the clip is no longer uploading.
		c.MediaKey = "m/2"
		checkErr(t, "TransitionClip twice", s.TransitionClip(ctx, c, clips.StatusUploading), partyline.ErrConflict)
		if got := getClip(t, s, "c_up").MediaKey; got != "m/1" {
			t.Errorf("a refused transition changed the media key to %q", got)
		}
		c.Status, c.DurationMS, c.Width, c.Height, c.ThumbnailKey = clips.StatusReady, 2000, 320, 240, "t/1"
		must(t, "TransitionClip to ready", s.TransitionClip(ctx, c, clips.StatusProcessing))
		if got := getClip(t, s, "c_up"); got.Status != clips.StatusReady || got.DurationMS != 2000 || got.ThumbnailKey != "t/1" {
			t.Errorf("after the second transition: %+v", got)
		}
	})
	t.Run("ConcurrentTransitions", func(t *testing.T) {
		c := newClip("c_race", "ada", base)
		c.Status = clips.StatusUploading
		must(t, "CreateClip", s.CreateClip(ctx, c))
		const n = 8
		errs := make(chan error, n)
		for i := range n {
			go func() {
				c := c
				c.Status, c.MediaKey = clips.StatusProcessing, fmt.Sprint("m/", i)
				errs <- s.TransitionClip(ctx, c, clips.StatusUploading)
			}()
		}
		won := 0
		for range n {
			switch err := <-errs; {
			case err == nil:
				won++
			case !errors.Is(err, partyline.ErrConflict):
				t.Errorf("TransitionClip: %v, want nil or ErrConflict", err)
			}
		}
		if won != 1 {
			t.Errorf("%d concurrent transitions from uploading succeeded, want exactly 1", won)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		c := newClip("missing", "ada", base)
		checkErr(t, "EditClip missing", s.EditClip(ctx, c), partyline.ErrNotFound)
		checkErr(t, "TransitionClip missing", s.TransitionClip(ctx, c, clips.StatusUploading), partyline.ErrNotFound)
		c = getClip(t, s, "c_up")
		c.Visibility = "friends"
		checkErr(t, "EditClip bad visibility", s.EditClip(ctx, c), partyline.ErrInvalid)
		c = getClip(t, s, "c_up")
		c.Status = "done"
		checkErr(t, "TransitionClip bad status", s.TransitionClip(ctx, c, clips.StatusReady), partyline.ErrInvalid)
	})
	t.Run("ClipsWithStatus", func(t *testing.T) {
		for i, id := range []string{"c_p2", "c_p1"} {
			c := newClip(id, "bo", base.Add(time.Duration(i)*time.Second))
			c.Status = clips.StatusProcessing
			must(t, "CreateClip", s.CreateClip(ctx, c))
		}
		got, err := s.ClipsWithStatus(ctx, clips.StatusProcessing, 10)
		must(t, "ClipsWithStatus", err)
		var ids []string
		for _, c := range got {
			ids = append(ids, c.ID)
		}
		// By id, oldest first; the winner of ConcurrentTransitions is processing too.
		if diff := cmp.Diff([]string{"c_p1", "c_p2", "c_race"}, ids); diff != "" {
			t.Errorf("ClipsWithStatus(processing) (-want +got):\n%s", diff)
		}
		got, err = s.ClipsWithStatus(ctx, clips.StatusProcessing, 1)
		must(t, "ClipsWithStatus", err)
		if len(got) != 1 {
			t.Errorf("ClipsWithStatus limit 1 gave %d clips", len(got))
		}
	})
	t.Run("Comments", func(t *testing.T) {
		c := clips.Comment{ID: idAt(base), ClipID: "c_up", Author: "bo", Body: "nice", CreatedAt: base}
		must(t, "AddComment", s.AddComment(ctx, c))
		must(t, "AddComment", s.AddComment(ctx, clips.Comment{ID: idAt(base.Add(time.Second)), ClipID: "c_up", Author: "ada", Body: "ty"}))
		got, err := s.GetComment(ctx, c.ID)
		must(t, "GetComment", err)
		c.CreatedAt = ms(base)
		if diff := cmp.Diff(c, got); diff != "" {
			t.Errorf("GetComment (-want +got):\n%s", diff)
		}
		must(t, "DeleteComment", s.DeleteComment(ctx, c.ID))
		if n := getClip(t, s, "c_up").Comments; n != 1 {
			t.Errorf("comments after DeleteComment = %d, want 1", n)
		}
		_, err = s.GetComment(ctx, c.ID)
		checkErr(t, "GetComment deleted", err, partyline.ErrNotFound)
		checkErr(t, "DeleteComment twice", s.DeleteComment(ctx, c.ID), partyline.ErrNotFound)
		if n := getClip(t, s, "c_up").Comments; n != 1 {
			t.Errorf("comments after a second DeleteComment = %d, want 1", n)
		}
	})
}

func testPublicClipPaging(t *testing.T, s Store) {
	ctx := t.Context()
	ensureUsers(t, s, "ada", "bo")
	var want []string // newest first: only public and ready
	for i := range 30 {
		at := base.Add(time.Duration(i) * time.Second)
		c := newClip("c_"+idAt(at), "ada", at)
		switch i % 5 {
		case 1:
			c.Visibility = clips.Private
		case 2:
			c.Visibility = clips.Unlisted
		case 3:
			c.Status = clips.StatusProcessing
		default:
			want = append([]string{c.ID}, want...)
		}
		must(t, "CreateClip", s.CreateClip(ctx, c))
	}
	must(t, "CreateClip", s.CreateClip(ctx, newClip("c_"+idAt(base.Add(time.Hour)), "bo", base)))
	checkPages(t, "PublicUserClips", want, func(t *testing.T, limit int, during func(page int)) []string {
		return pageAll(t, func(cursor string) ([]string, string, error) {
			cs, next, err := s.PublicUserClips(ctx, "ada", cursor, limit)
			return clipIDs(cs), next, err
		}, during)
	}, 1, 4, 200)
	t.Run("InvalidCursor", func(t *testing.T) {
		for _, cursor := range []string{"!!not base64!!", keyset.EncodeTimeID(base, want[0])} {
			_, _, err := s.PublicUserClips(ctx, "ada", cursor, 5)
			checkErr(t, "PublicUserClips cursor "+cursor, err, partyline.ErrInvalid)
		}
	})
}
