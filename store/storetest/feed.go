package storetest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline"
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
					out := make([]string, len(fs))
					for i, f := range fs {
						out[i] = key(f)
					}
					return out, next, err
				}, during)
			}
			for _, limit := range []int{1, 4, 23} {
				t.Run(fmt.Sprintf("Limit%d", limit), func(t *testing.T) {
					if diff := cmp.Diff(want, pageKeys(t, limit, nil)); diff != "" {
						t.Errorf("paged %s (-want +got):\n%s", side.name, diff)
					}
				})
			}
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
