-- The first schema of partyline. Times are INTEGER unix milliseconds (UTC),
-- JSON is TEXT checked with json_valid, and text compares with the BINARY
-- collation, so keyset order is byte order (ULIDs sort by time).

-- +goose Up
CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE follows (
    follower   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    followee   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (follower, followee),
    CHECK (follower <> followee)
) STRICT;
-- Followers and Following page newest edge first by (created_at, other user).
CREATE INDEX follows_followee_idx ON follows (followee, created_at, follower);
CREATE INDEX follows_follower_idx ON follows (follower, created_at, followee);

CREATE TABLE rooms (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    visibility TEXT NOT NULL CHECK (visibility IN ('public', 'private')),
    owner      TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE room_members (
    room_id      TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'member')),
    last_read_id TEXT NOT NULL DEFAULT '',
    joined_at    INTEGER NOT NULL,
    -- seq breaks ties between members who joined in the same millisecond.
    seq          INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
) STRICT;
CREATE INDEX room_members_user_idx ON room_members (user_id);

-- Read markers of dm channels, which have no membership row to hold them.
CREATE TABLE dm_read_markers (
    channel      TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    last_read_id TEXT NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (channel, user_id)
) STRICT;

CREATE TABLE messages (
    id            TEXT PRIMARY KEY,
    channel       TEXT NOT NULL,
    room_id       TEXT REFERENCES rooms (id) ON DELETE CASCADE,
    author        TEXT NOT NULL,
    body          TEXT NOT NULL CHECK (json_valid(body)),
    created_at    INTEGER NOT NULL,
    edited_at     INTEGER,
    deleted_at    INTEGER,
    idem_key      TEXT,
    stream_epoch  TEXT NOT NULL DEFAULT '',
    stream_offset INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX messages_channel_id_idx ON messages (channel, id);
CREATE INDEX messages_room_idx ON messages (room_id);
CREATE UNIQUE INDEX messages_author_idem_key_idx ON messages (author, idem_key) WHERE idem_key IS NOT NULL;

CREATE TABLE clips (
    id            TEXT PRIMARY KEY,
    owner         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title         TEXT NOT NULL,
    game          TEXT NOT NULL,
    tags          TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tags)),
    visibility    TEXT NOT NULL CHECK (visibility IN ('public', 'unlisted', 'private')),
    status        TEXT NOT NULL CHECK (status IN ('uploading', 'processing', 'ready', 'failed')),
    fail_reason   TEXT NOT NULL DEFAULT '',
    size_bytes    INTEGER NOT NULL DEFAULT 0,
    content_type  TEXT NOT NULL DEFAULT '',
    sha256        TEXT NOT NULL DEFAULT '',
    duration_ms   INTEGER NOT NULL DEFAULT 0,
    width         INTEGER NOT NULL DEFAULT 0,
    height        INTEGER NOT NULL DEFAULT 0,
    media_key     TEXT NOT NULL DEFAULT '',
    thumbnail_key TEXT NOT NULL DEFAULT '',
    likes         INTEGER NOT NULL DEFAULT 0,
    views         INTEGER NOT NULL DEFAULT 0,
    comments      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX clips_owner_id_idx ON clips (owner, id);

CREATE TABLE clip_likes (
    clip_id    TEXT NOT NULL REFERENCES clips (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (clip_id, user_id)
) STRICT;
CREATE INDEX clip_likes_user_idx ON clip_likes (user_id, created_at);

-- Engagement events are an append-only log; user_id is not a foreign key so
-- the log never blocks on, or is rewritten by, changes to users.
CREATE TABLE clip_events (
    id         INTEGER PRIMARY KEY,
    clip_id    TEXT NOT NULL REFERENCES clips (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('view', 'like', 'share', 'skip')),
    watched_ms INTEGER NOT NULL DEFAULT 0,
    at         INTEGER NOT NULL
) STRICT;
CREATE INDEX clip_events_clip_idx ON clip_events (clip_id, at);
CREATE INDEX clip_events_user_idx ON clip_events (user_id, at);
CREATE INDEX clip_events_at_idx ON clip_events (at);

CREATE TABLE comments (
    id         TEXT PRIMARY KEY,
    clip_id    TEXT NOT NULL REFERENCES clips (id) ON DELETE CASCADE,
    author     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX comments_clip_id_idx ON comments (clip_id, id);
CREATE INDEX comments_author_idx ON comments (author);

-- +goose Down
DROP TABLE comments;
DROP TABLE clip_events;
DROP TABLE clip_likes;
DROP TABLE clips;
DROP TABLE messages;
DROP TABLE dm_read_markers;
DROP TABLE room_members;
DROP TABLE rooms;
DROP TABLE follows;
DROP TABLE users;
