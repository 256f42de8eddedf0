package storetest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/feed"
	"github.com/partyline/partyline/store/internal/keyset"
)

func testFollows(t *testing.T, s Store) {
	ctx := t.Context()
	ensureUsers(t, s, "ada", "bo", "cy")
	counts := func(t *testing.T, user string, followers, following int64) {
		t.Helper()
		gotFollowers, gotFollowing, err := s.FollowCounts(ctx, user)
		must(t, "FollowCounts", err)
		if gotFollowers != followers || gotFollowing != following {
			t.Errorf("FollowCounts(%s) = %d, %d; want %d, %d", user, gotFollowers, gotFollowing, followers, following)
		}
	}
	before := time.Now().Add(-time.Second)
	for _, step := range []struct {
		op, follower, followee string
		want                   bool
	}{
		{"follow", "ada", "bo", true},
		{"follow", "ada", "bo", false},
		{"follow", "cy", "bo", true},
		{"follow", "bo", "ada", true},
		{"unfollow", "cy", "bo", true},
		{"unfollow", "cy", "bo", false},
		{"unfollow", "ada", "nobody", false},
	} {
		t.Run(fmt.Sprintf("%s %s %s", step.follower, step.op, step.followee), func(t *testing.T) {
			var (
				ok  bool
				err error
			)
			if step.op == "follow" {
				ok, err = s.Follow(ctx, step.follower, step.followee)
			} else {
				ok, err = s.Unfollow(ctx, step.follower, step.followee)
			}
			must(t, step.op, err)
			if ok != step.want {
				t.Errorf("%s = %v, want %v", step.op, ok, step.want)
			}
		})
	}
	counts(t, "bo", 1, 1)
	counts(t, "ada", 1, 1)
	counts(t, "cy", 0, 0)
	counts(t, "nobody", 0, 0)

	t.Run("Lists", func(t *testing.T) {
		followers, next, err := s.Followers(ctx, "bo", "", 10)
		must(t, "Followers", err)
		if len(followers) != 1 || next != "" {
			t.Fatalf("Followers(bo) = %+v, next %q; want one edge and no next", followers, next)
		}
		f := followers[0]
		if f.Follower != "ada" || f.Followee != "bo" || f.CreatedAt.Before(before) || !f.CreatedAt.Equal(ms(f.CreatedAt)) {
			t.Errorf("Followers(bo) = %+v, want ada -> bo created now, in whole milliseconds", f)
		}
		following, _, err := s.Following(ctx, "ada", "", 10)
		must(t, "Following", err)
		if diff := cmp.Diff(followers, following); diff != "" {
			t.Errorf("the same edge seen from both ends differs (-followers +following):\n%s", diff)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		for _, tc := range []struct {
			name, follower, followee string
			want                     error
		}{
			{"self", "ada", "ada", partyline.ErrInvalid},
			{"unknown followee", "ada", "nobody", partyline.ErrNotFound},
			{"unknown follower", "nobody", "ada", partyline.ErrNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := s.Follow(ctx, tc.follower, tc.followee)
				checkErr(t, "Follow", err, tc.want)
			})
		}
		counts(t, "ada", 1, 1)
	})
}

func testFollowPaging(t *testing.T, s Store) {
	ctx := t.Context()
	ensureUsers(t, s, "star", "fan")
	// Made in an order unlike their id order; many share a millisecond, so
	// the user id must break ties.
	var others []string
	for i := range 23 {
		others = append(others, fmt.Sprintf("u%02d", (i*7)%23))
	}
	ensureUsers(t, s, others...)
	for _, u := range others {
		_, err := s.Follow(ctx, u, "star")
		must(t, "Follow", err)
		_, err = s.Follow(ctx, "fan", u)
		must(t, "Follow", err)
	}

	for _, side := range []struct {
		name  string
		user  string
		list  func(ctx context.Context, user, cursor string, limit int) ([]feed.Follow, string, error)
		other func(feed.Follow) string
	}{
		{"Followers", "star", s.Followers, func(f feed.Follow) string { return f.Follower }},
		{"Following", "fan", s.Following, func(f feed.Follow) string { return f.Followee }},
	} {
		t.Run(side.name, func(t *testing.T) {
			key := func(f feed.Follow) string {
				return fmt.Sprintf("%d/%s", f.CreatedAt.UnixMilli(), side.other(f))
			}
			all, next, err := side.list(ctx, side.user, "", 200)
			must(t, side.name, err)
			if next != "" {
				t.Errorf("one page of everything has next %q", next)
			}
			var want, users []string
			for i, f := range all {
				want = append(want, key(f))
				users = append(users, side.other(f))
				if i > 0 {
					p := all[i-1]
					if f.CreatedAt.After(p.CreatedAt) || f.CreatedAt.Equal(p.CreatedAt) && side.other(f) >= side.other(p) {
						t.Errorf("%s not newest edge first: %+v before %+v", side.name, p, f)
					}
				}
			}
			sort.Strings(users)
			wantUsers := append([]string(nil), others...)
			sort.Strings(wantUsers)
			if diff := cmp.Diff(wantUsers, users); diff != "" {
				t.Fatalf("%s users (-want +got):\n%s", side.name, diff)
			}

			pageKeys := func(t *testing.T, limit int, during func(page int)) []string {
				return pageAll(t, func(cursor string) ([]string, string, error) {
					fs, next, err := side.list(ctx, side.user, cursor, limit)
					return keysOf(fs, key), next, err
				}, during)
			}
			checkPages(t, side.name, want, pageKeys, 1, 4, 23)
			t.Run("StableUnderInserts", func(t *testing.T) {
				got := pageKeys(t, 4, func(page int) {
					u := fmt.Sprintf("new-%s-%d", side.name, page)
					ensureUsers(t, s, u)
					var err error
					if side.name == "Followers" {
						_, err = s.Follow(ctx, u, side.user)
					} else {
						_, err = s.Follow(ctx, side.user, u)
					}
					must(t, "Follow", err)
				})
				// Every edge that existed before paging appears once, in order;
				// new edges may appear or not, but never twice.
				seen := map[string]bool{}
				var old []string
				for _, k := range got {
					if seen[k] {
						t.Errorf("edge %s listed twice", k)
					}
					seen[k] = true
					if slices.Contains(want, k) {
						old = append(old, k)
					}
				}
				if diff := cmp.Diff(want, old); diff != "" {
					t.Errorf("edges that existed before paging (-want +got):\n%s", diff)
				}
			})
			t.Run("InvalidCursor", func(t *testing.T) {
				for _, cursor := range []string{"%%%", keyset.EncodeID("u01"), keyset.EncodeTimeID(base, "")} {
					_, _, err := side.list(ctx, side.user, cursor, 5)
					checkErr(t, side.name+" cursor "+cursor, err, partyline.ErrInvalid)
				}
			})
		})
	}
	t.Run("DefaultLimit", func(t *testing.T) {
		// Fewer edges than the default page: limit 0 lists them all at once.
		n, _, err := s.FollowCounts(ctx, "star")
		must(t, "FollowCounts", err)
		fs, next, err := s.Followers(ctx, "star", "", 0)
		must(t, "Followers", err)
		if int64(len(fs)) != n || next != "" {
			t.Errorf("Followers limit 0 = %d edges, next %q; want all %d and no next", len(fs), next, n)
		}
	})
}

// followMany makes fan follow n new users named prefix000, prefix001 and
// on, calling each with i and the user after the i'th follow.
func followMany(t *testing.T, s Store, fan, prefix string, n int, each func(i int, user string)) {
	t.Helper()
	for i := range n {
		u := fmt.Sprintf("%s%03d", prefix, i)
		ensureUsers(t, s, u)
		_, err := s.Follow(t.Context(), fan, u)
		must(t, "Follow", err)
		each(i, u)
	}
}

// feedClip returns a listable clip of owner and game made at at.
func feedClip(id, owner, game string, at time.Time) clips.Clip {
	c := newClip(id, owner, at)
	c.Game = game
	return c
}

func clipIDs(cs []clips.Clip) []string {
	return keysOf(cs, func(c clips.Clip) string { return c.ID })
}

func sortedIDs(cs []clips.Clip) []string {
	out := clipIDs(cs)
	sort.Strings(out)
	return out
}

func testFeedProfile(t *testing.T, s Store) {
	ctx := t.Context()
	ensureUsers(t, s, "ada", "bo", "cy")
	for _, f := range [][2]string{{"bo", "ada"}, {"cy", "ada"}, {"ada", "bo"}} {
		_, err := s.Follow(ctx, f[0], f[1])
		must(t, "Follow", err)
	}
	for i, vis := range []string{clips.Public, clips.Public, clips.Unlisted, clips.Private} {
		c := newClip(fmt.Sprintf("c_%d", i), "ada", base.Add(time.Duration(i)*time.Second))
		c.Visibility = vis
		must(t, "CreateClip", s.CreateClip(ctx, c))
	}
	processing := newClip("c_proc", "ada", base)
	processing.Status = clips.StatusProcessing
	must(t, "CreateClip", s.CreateClip(ctx, processing))

	for _, tc := range []struct {
		user, viewer string
		want         feed.Profile
	}{
		{"ada", "ada", feed.Profile{ID: "ada", Followers: 2, Following: 1, Clips: 5}},
		{"ada", "bo", feed.Profile{ID: "ada", Followers: 2, Following: 1, Clips: 2, Followed: true}},
		{"ada", "", feed.Profile{ID: "ada", Followers: 2, Following: 1, Clips: 2}},
		{"cy", "ada", feed.Profile{ID: "cy", Following: 1}},
	} {
		t.Run(tc.user+" seen by "+tc.viewer, func(t *testing.T) {
			got, err := s.Profile(ctx, tc.user, tc.viewer)
			must(t, "Profile", err)
			if got.CreatedAt.IsZero() {
				t.Errorf("Profile CreatedAt is zero")
			}
			got.CreatedAt = time.Time{}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Profile (-want +got):\n%s", diff)
			}
		})
	}
	_, err := s.Profile(ctx, "nobody", "ada")
	checkErr(t, "Profile(nobody)", err, partyline.ErrNotFound)
}

func testFollowingClips(t *testing.T, s Store) {
	ctx := t.Context()
	ensureUsers(t, s, "fan", "a", "b", "c", "stranger")
	for _, u := range []string{"a", "b", "c"} {
		_, err := s.Follow(ctx, "fan", u)
		must(t, "Follow", err)
	}
	// 30 listable clips over three followees, several in each millisecond,
	// so the id breaks ties; plus clips that must never be listed.
	var want []string
	for i := range 30 {
		owner := []string{"a", "b", "c"}[i%3]
		at := base.Add(time.Duration(i/4) * time.Millisecond)
		id := fmt.Sprintf("c_%02d", (i*11)%30)
		must(t, "CreateClip", s.CreateClip(ctx, feedClip(id, owner, "valorant", at)))
		want = append(want, fmt.Sprintf("%d/%s", ms(at).UnixMilli(), id))
	}
	sort.Sort(sort.Reverse(sort.StringSlice(want)))
	hidden := []clips.Clip{feedClip("h_unlisted", "a", "g", base), feedClip("h_private", "b", "g", base),
		feedClip("h_processing", "c", "g", base), feedClip("h_stranger", "stranger", "g", base)}
	hidden[0].Visibility, hidden[1].Visibility, hidden[2].Status = clips.Unlisted, clips.Private, clips.StatusProcessing
	for _, c := range hidden {
		must(t, "CreateClip", s.CreateClip(ctx, c))
	}
	key := func(c clips.Clip) string { return fmt.Sprintf("%d/%s", c.CreatedAt.UnixMilli(), c.ID) }
	pageKeys := func(t *testing.T, limit int, during func(page int)) []string {
		return pageAll(t, func(cursor string) ([]string, string, error) {
			cs, next, err := s.FollowingClips(ctx, "fan", cursor, limit)
			out := make([]string, len(cs))
			for i, c := range cs {
				out[i] = key(c)
				if c.Visibility != clips.Public || c.Status != clips.StatusReady {
					t.Errorf("FollowingClips listed %s (%s, %s)", c.ID, c.Visibility, c.Status)
				}
			}
			return out, next, err
		}, during)
	}
	checkPages(t, "FollowingClips", want, pageKeys, 1, 7, 30, 200)
	t.Run("FullClip", func(t *testing.T) {
		cs, _, err := s.FollowingClips(ctx, "fan", "", 1)
		must(t, "FollowingClips", err)
		got := getClip(t, s, cs[0].ID)
		if diff := cmp.Diff(got, cs[0]); diff != "" {
			t.Errorf("a feed clip differs from GetClip (-get +feed):\n%s", diff)
		}
	})
	t.Run("StableUnderInserts", func(t *testing.T) {
		got := pageKeys(t, 4, func(page int) {
			c := feedClip(fmt.Sprintf("n_%02d", page), "a", "valorant", time.Now())
			must(t, "CreateClip", s.CreateClip(ctx, c))
		})
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("paging while clips arrive (-want +got):\n%s", diff)
		}
		first, _, err := s.FollowingClips(ctx, "fan", "", 1)
		must(t, "FollowingClips", err)
		if len(first) != 1 || first[0].ID[:2] != "n_" {
			t.Errorf("first clip after new posts = %v, want a new one at once", clipIDs(first))
		}
	})
	t.Run("ManyFollowees", func(t *testing.T) {
		// Stores may plan differently for someone who follows many; the
		// answer must not change.
		ensureUsers(t, s, "superfan")
		var want []string
		followMany(t, s, "superfan", "m", 130, func(i int, u string) {
			if i%2 == 0 {
				at := base.Add(time.Duration(i%7) * time.Millisecond)
				id := fmt.Sprintf("m_%03d", i)
				must(t, "CreateClip", s.CreateClip(ctx, feedClip(id, u, "valorant", at)))
				want = append(want, fmt.Sprintf("%d/%s", ms(at).UnixMilli(), id))
			}
		})
		sort.Sort(sort.Reverse(sort.StringSlice(want)))
		got := pageAll(t, func(cursor string) ([]string, string, error) {
			cs, next, err := s.FollowingClips(ctx, "superfan", cursor, 9)
			return keysOf(cs, key), next, err
		}, nil)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("following feed of someone following 130 (-want +got):\n%s", diff)
		}
	})
	t.Run("NotFollowing", func(t *testing.T) {
		cs, next, err := s.FollowingClips(ctx, "stranger", "", 10)
		must(t, "FollowingClips", err)
		if len(cs) != 0 || next != "" {
			t.Errorf("FollowingClips of someone following nobody = %v, %q", clipIDs(cs), next)
		}
	})
	t.Run("InvalidCursor", func(t *testing.T) {
		for _, cursor := range []string{"%%%", keyset.EncodeID("c_01")} {
			_, _, err := s.FollowingClips(ctx, "fan", cursor, 5)
			checkErr(t, "FollowingClips cursor "+cursor, err, partyline.ErrInvalid)
		}
	})
}

func testFeedCandidates(t *testing.T, s Store) {
	ctx := t.Context()
	ensureUsers(t, s, "a", "b")
	for i := range 6 {
		must(t, "CreateClip", s.CreateClip(ctx, feedClip(fmt.Sprintf("a_%d", i), "a", "cs2", base.Add(time.Duration(i)*time.Minute))))
		must(t, "CreateClip", s.CreateClip(ctx, feedClip(fmt.Sprintf("b_%d", i), "b", "dota", base.Add(time.Duration(i)*time.Minute))))
	}
	priv := feedClip("a_private", "a", "cs2", base.Add(time.Hour))
	priv.Visibility = clips.Private
	unl := feedClip("b_unlisted", "b", "dota", base.Add(time.Hour))
	unl.Visibility = clips.Unlisted
	up := feedClip("a_uploading", "a", "cs2", base.Add(time.Hour))
	up.Status = clips.StatusUploading
	for _, c := range []clips.Clip{priv, unl, up} {
		must(t, "CreateClip", s.CreateClip(ctx, c))
	}

	for _, tc := range []struct {
		name string
		list func() ([]clips.Clip, error)
		want []string
	}{
		{"GameClips", func() ([]clips.Clip, error) { return s.GameClips(ctx, []string{"cs2", "dota", "none"}, 2) },
			[]string{"a_4", "a_5", "b_4", "b_5"}},
		{"GameClipsNone", func() ([]clips.Clip, error) { return s.GameClips(ctx, nil, 2) }, []string{}},
		{"CreatorClips", func() ([]clips.Clip, error) { return s.CreatorClips(ctx, []string{"a"}, 3) },
			[]string{"a_3", "a_4", "a_5"}},
		{"CreatorClipsZero", func() ([]clips.Clip, error) { return s.CreatorClips(ctx, []string{"a"}, 0) }, []string{}},
		{"ListableClips", func() ([]clips.Clip, error) {
			return s.ListableClips(ctx, []string{"a_1", "b_2", "a_private", "b_unlisted", "a_uploading", "missing", "a_1"})
		}, []string{"a_1", "b_2"}},
		{"ListableClipsNone", func() ([]clips.Clip, error) { return s.ListableClips(ctx, nil) }, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.list()
			must(t, tc.name, err)
			if got == nil {
				t.Errorf("%s returned nil, want an empty slice", tc.name)
			}
			if diff := cmp.Diff(tc.want, sortedIDs(got)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.name, diff)
			}
		})
	}
	t.Run("ForYou", func(t *testing.T) { testForYouCandidates(t, s) })
}

func testFeedEngagement(t *testing.T, s Store) {
	ctx := t.Context()
	ensureUsers(t, s, "ada", "bo", "cy")
	now := ms(time.Now())
	hour := now.Truncate(time.Hour)
	c := feedClip("c_hot", "ada", "apex", now.Add(-2*time.Hour))
	c.DurationMS = 20000
	must(t, "CreateClip", s.CreateClip(ctx, c))
	hidden := feedClip("c_hidden", "ada", "apex", now.Add(-2*time.Hour))
	hidden.Visibility = clips.Unlisted
	must(t, "CreateClip", s.CreateClip(ctx, hidden))
	old := now.Add(-48 * time.Hour)
	for _, e := range []clips.Event{
		{ClipID: "c_hot", UserID: "bo", Kind: clips.EventView, WatchedMS: 19000, At: now},   // complete
		{ClipID: "c_hot", UserID: "cy", Kind: clips.EventView, WatchedMS: 5000, At: now},    // partial
		{ClipID: "c_hot", UserID: "cy", Kind: clips.EventSkip, WatchedMS: 900, At: now},     // skip
		{ClipID: "c_hot", UserID: "bo", Kind: clips.EventShare, At: now},                    // share
		{ClipID: "c_hot", UserID: "bo", Kind: clips.EventLike, At: now},                     // counted from likes
		{ClipID: "c_hot", UserID: "bo", Kind: clips.EventView, WatchedMS: 20000, At: old},   // too old
		{ClipID: "c_hidden", UserID: "bo", Kind: clips.EventView, WatchedMS: 1000, At: now}, // not listable
	} {
		must(t, "RecordEvent", s.RecordEvent(ctx, e))
	}
	_, err := s.Like(ctx, "c_hot", "bo")
	must(t, "Like", err)
	_, err = s.Like(ctx, "c_hidden", "bo")
	must(t, "Like", err)
	must(t, "AddComment", s.AddComment(ctx, clips.Comment{ID: idAt(now), ClipID: "c_hot", Author: "cy", Body: "gg", CreatedAt: now}))

	got, err := s.Engagement(ctx, now.Add(-time.Hour))
	must(t, "Engagement", err)
	// Likes and comments carry the store's clock; allow the hour to have
	// turned between the events and the likes.
	sum := feed.Engagement{ClipID: "c_hot", Owner: "ada", Game: "apex", DurationMS: 20000, CreatedAt: ms(c.CreatedAt), Hour: hour}
	for _, e := range got {
		if e.ClipID != "c_hot" {
			t.Errorf("Engagement lists %s, which is not listable", e.ClipID)
			continue
		}
		if e.Hour.Before(hour) || !e.Hour.Equal(e.Hour.Truncate(time.Hour)) {
			t.Errorf("Engagement hour %v, want a whole hour from %v", e.Hour, hour)
		}
		sum.Views += e.Views
		sum.Completes += e.Completes
		sum.Skips += e.Skips
		sum.Likes += e.Likes
		sum.Shares += e.Shares
		sum.Comments += e.Comments
	}
	want := feed.Engagement{ClipID: "c_hot", Owner: "ada", Game: "apex", DurationMS: 20000, CreatedAt: ms(c.CreatedAt), Hour: hour,
		Views: 2, Completes: 1, Skips: 1, Likes: 1, Shares: 1, Comments: 1}
	if diff := cmp.Diff(want, sum); diff != "" {
		t.Errorf("Engagement summed over hours (-want +got):\n%s", diff)
	}

	t.Run("ViewerHistory", func(t *testing.T) {
		hs, err := s.ViewerHistory(ctx, "bo", 100)
		must(t, "ViewerHistory", err)
		var kinds []string
		for i, h := range hs {
			kinds = append(kinds, h.ClipID+"/"+h.Kind)
			if i > 0 && h.At.After(hs[i-1].At) {
				t.Errorf("ViewerHistory not newest first: %v after %v", h.At, hs[i-1].At)
			}
			if h.Owner != "ada" || h.Game != "apex" {
				t.Errorf("ViewerHistory event %+v lacks the clip's owner and game", h)
			}
		}
		sort.Strings(kinds)
		wantKinds := []string{"c_hidden/like", "c_hidden/view", "c_hot/like", "c_hot/share", "c_hot/view", "c_hot/view"}
		if diff := cmp.Diff(wantKinds, kinds); diff != "" {
			t.Errorf("ViewerHistory(bo) (-want +got):\n%s", diff)
		}
		hs, err = s.ViewerHistory(ctx, "bo", 2)
		must(t, "ViewerHistory", err)
		if len(hs) != 2 || hs[0].At.Before(now) {
			t.Errorf("ViewerHistory limit 2 = %+v, want the two newest", hs)
		}
		hs, err = s.ViewerHistory(ctx, "nobody", 10)
		must(t, "ViewerHistory", err)
		if hs == nil || len(hs) != 0 {
			t.Errorf("ViewerHistory(nobody) = %#v, want empty", hs)
		}
	})
}

func testFeedModel(t *testing.T, s Store) {
	ctx := t.Context()
	_, err := s.LoadModel(ctx, "ranker")
	checkErr(t, "LoadModel before any save", err, partyline.ErrNotFound)
	for _, blob := range [][]byte{{1, 2, 3}, {}, make([]byte, 1<<20)} {
		must(t, "SaveModel", s.SaveModel(ctx, "ranker", blob))
		got, err := s.LoadModel(ctx, "ranker")
		must(t, "LoadModel", err)
		if diff := cmp.Diff(blob, got); diff != "" {
			t.Errorf("LoadModel after SaveModel of %d bytes (-want +got):\n%s", len(blob), diff)
		}
	}
	must(t, "SaveModel", s.SaveModel(ctx, "other", []byte("x")))
	got, err := s.LoadModel(ctx, "ranker")
	must(t, "LoadModel", err)
	if len(got) != 1<<20 {
		t.Errorf("saving another name changed ranker: %d bytes", len(got))
	}
	checkErr(t, "SaveModel with no name", s.SaveModel(ctx, "", nil), partyline.ErrInvalid)
}

// testForYouCandidates checks Candidates against the single-source methods
// it stands for: the same clips, each once, in the first source offering it.
func testForYouCandidates(t *testing.T, s Store) {
	ctx := t.Context()
	ensureUsers(t, s, "viewer", "fa", "fb", "cr", "other", "many")
	for _, u := range []string{"fa", "fb"} {
		_, err := s.Follow(ctx, "viewer", u)
		must(t, "Follow", err)
	}
	for i := range 8 {
		at := base.Add(time.Duration(i) * time.Minute)
		for _, c := range []clips.Clip{
			feedClip(fmt.Sprintf("fa_%d", i), "fa", "cs2", at),
			feedClip(fmt.Sprintf("fb_%d", i), "fb", "dota", at.Add(time.Second)),
			feedClip(fmt.Sprintf("cr_%d", i), "cr", "cs2", at.Add(2*time.Second)),
			feedClip(fmt.Sprintf("ot_%d", i), "other", "apex", at.Add(3*time.Second)),
		} {
			must(t, "CreateClip", s.CreateClip(ctx, c))
		}
	}
	priv := feedClip("fa_private", "fa", "cs2", base.Add(time.Hour))
	priv.Visibility = clips.Private
	must(t, "CreateClip", s.CreateClip(ctx, priv))
	// Someone who follows many people, so stores may plan differently.
	followMany(t, s, "many", "cm", 130, func(i int, u string) {
		if i%3 == 0 {
			must(t, "CreateClip", s.CreateClip(ctx, feedClip(fmt.Sprintf("cm_%03d", i), u, "cs2", base.Add(time.Duration(i)*time.Millisecond))))
		}
	})

	facts := func(cs []clips.Clip) []feed.CandidateClip {
		out := []feed.CandidateClip{}
		for _, c := range cs {
			out = append(out, feed.CandidateClip{ID: c.ID, Owner: c.Owner, Game: c.Game, DurationMS: c.DurationMS, CreatedAt: c.CreatedAt})
		}
		return out
	}
	// want is what the single-source methods return, each clip kept in
	// its first source.
	want := func(t *testing.T, q feed.CandidateQuery) [4][]feed.CandidateClip {
		var lists [4][]clips.Clip
		var err error
		if q.Following > 0 {
			lists[0], _, err = s.FollowingClips(ctx, q.Viewer, "", q.Following)
			must(t, "FollowingClips", err)
		}
		lists[1], err = s.CreatorClips(ctx, q.Creators, q.PerCreator)
		must(t, "CreatorClips", err)
		lists[2], err = s.GameClips(ctx, q.Games, q.PerGame)
		must(t, "GameClips", err)
		lists[3], err = s.ListableClips(ctx, q.IDs)
		must(t, "ListableClips", err)
		seen := map[string]bool{}
		var out [4][]feed.CandidateClip
		for i, l := range lists {
			l = slices.DeleteFunc(slices.Clone(l), func(c clips.Clip) bool {
				dup := seen[c.ID]
				seen[c.ID] = true
				return dup
			})
			out[i] = facts(l)
		}
		return out
	}
	byID := func(a, b feed.CandidateClip) int { return strings.Compare(a.ID, b.ID) }
	for _, tc := range []struct {
		name string
		q    feed.CandidateQuery
	}{
		{"AllSources", feed.CandidateQuery{Viewer: "viewer", Following: 5, Creators: []string{"cr", "fa", "nobody"}, PerCreator: 3,
			Games: []string{"cs2", "apex"}, PerGame: 4, IDs: []string{"ot_0", "fa_7", "fa_private", "missing", "ot_0", "cr_1"}}},
		{"FollowingOnly", feed.CandidateQuery{Viewer: "viewer", Following: 100}},
		{"ManyFollowees", feed.CandidateQuery{Viewer: "many", Following: 20, IDs: []string{"cm_000", "ot_1"}}},
		{"NotFollowing", feed.CandidateQuery{Viewer: "other", Following: 10, Games: []string{"dota"}, PerGame: 2}},
		{"Nothing", feed.CandidateQuery{Viewer: "viewer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Candidates(ctx, tc.q)
			must(t, "Candidates", err)
			w := want(t, tc.q)
			for i, l := range [][]feed.CandidateClip{got.Following, got.Creators, got.Games, got.IDs} {
				if l == nil {
					t.Errorf("source %d is nil, want an empty slice", i)
				}
				l = slices.Clone(l)
				slices.SortFunc(l, byID)
				slices.SortFunc(w[i], byID)
				if diff := cmp.Diff(w[i], l, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("source %d (-want +got):\n%s", i, diff)
				}
			}
		})
	}
	t.Run("NewClipAtOnce", func(t *testing.T) {
		c := feedClip("fa_new", "fa", "cs2", time.Now())
		must(t, "CreateClip", s.CreateClip(ctx, c))
		got, err := s.Candidates(ctx, feed.CandidateQuery{Viewer: "viewer", Following: 1})
		must(t, "Candidates", err)
		if len(got.Following) != 1 || got.Following[0].ID != "fa_new" {
			t.Errorf("following candidates after a new clip = %v, want fa_new", got.Following)
		}
	})
}
