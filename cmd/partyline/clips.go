package main

import (
	"context"
	"net/http"
	"path/filepath"

	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/feed"
)

// setupClips builds the clips service: media in <data dir>/blobs,
// resumable uploads in progress in <data dir>/uploads. Its Run loop is
// started by serve and its notifier (the node) attached by setupRealtime.
func (a *app) setupClips() error {
	blobs, err := clips.NewDir(filepath.Join(a.cfg.DataDir, "blobs"))
	if err != nil {
		return err
	}
	svc, err := clips.New(clips.Options{
		Store:          a.store,
		Blobs:          blobs,
		UploadDir:      filepath.Join(a.cfg.DataDir, "uploads"),
		Followers:      followerIDs(a.store),
		MaxUploadBytes: int64(a.cfg.MaxUploadBytes),
		// Engagement teaches the feed's model and moves trending. The
		// feed is built after clips, so these look it up when called.
		OnEvent: func(ev clips.Event) {
			if a.feed != nil {
				a.feed.Observe(ev)
			}
		},
		OnComment: func(c clips.Comment) {
			if a.feed != nil {
				a.feed.ObserveComment(c)
			}
		},
		Logger: a.logger,
	})
	if err != nil {
		return err
	}
	a.clips = svc
	return nil
}

// followerIDs adapts feed.Store.Followers to what clips consumes: feed
// imports clips, so clips cannot name feed's types itself.
func followerIDs(st feed.Store) clips.FollowersFunc {
	return func(ctx context.Context, user, cursor string, limit int) ([]string, string, error) {
		fs, next, err := st.Followers(ctx, user, cursor, limit)
		if err != nil {
			return nil, "", err
		}
		ids := make([]string, len(fs))
		for i, f := range fs {
			ids[i] = f.Follower
		}
		return ids, next, nil
	}
}

// optionalUser authenticates the bearer token when there is one, as
// requireUser does (an invalid token is 401), and lets requests without an
// Authorization header through anonymously: clip reads are public.
func (a *app) optionalUser(next http.Handler) http.Handler {
	authed := a.requireUser(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			next.ServeHTTP(w, r)
			return
		}
		authed.ServeHTTP(w, r)
	})
}
