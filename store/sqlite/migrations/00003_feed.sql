-- Feed indexes and the ranking model's saved state. A listable clip is a
-- public clip whose status is ready; the partial indexes hold only those, so
-- feed queries never read clips that may not be listed.

-- +goose Up
-- Following feed (fan-out on read): for each followee, their newest
-- listable clips, read newest first by (created_at, id).
CREATE INDEX clips_listable_owner_idx ON clips (owner, created_at DESC, id DESC)
    WHERE visibility = 'public' AND status = 'ready';
-- For-you candidates: a game's newest listable clips.
CREATE INDEX clips_listable_game_idx ON clips (game, created_at DESC, id DESC)
    WHERE visibility = 'public' AND status = 'ready';
-- The following feed of someone who follows many: listable clips by time.
CREATE INDEX clips_listable_created_idx ON clips (created_at DESC, id DESC)
    WHERE visibility = 'public' AND status = 'ready';
-- Trending rebuilds: likes and comments by time.
CREATE INDEX clip_likes_created_idx ON clip_likes (created_at);
CREATE INDEX comments_created_idx ON comments (created_at);

-- The saved state of the feed's ranking model, one row per model name.
CREATE TABLE feed_models (
    name       TEXT PRIMARY KEY,
    blob       BLOB NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP TABLE feed_models;
DROP INDEX comments_created_idx;
DROP INDEX clip_likes_created_idx;
DROP INDEX clips_listable_created_idx;
DROP INDEX clips_listable_game_idx;
DROP INDEX clips_listable_owner_idx;
