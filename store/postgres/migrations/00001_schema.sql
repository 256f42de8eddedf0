-- The first schema of partyline. Ids and channels use the "C" collation so
-- that keyset order is byte order (ULIDs sort by time) whatever the
-- database's default collation is. Times are timestamptz cut to
-- milliseconds by the store before they are written.

-- +goose Up
CREATE TABLE users (
    id         text COLLATE "C" PRIMARY KEY,
    created_at timestamptz NOT NULL
);

CREATE TABLE follows (
    follower   text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    followee   text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (follower, followee),
    CHECK (follower <> followee)
);
-- Followers and Following page newest edge first by (created_at, other user).
CREATE INDEX follows_followee_idx ON follows (followee, created_at, follower);
CREATE INDEX follows_follower_idx ON follows (follower, created_at, followee);

CREATE TABLE rooms (
    id         text COLLATE "C" PRIMARY KEY,
    name       text NOT NULL,
    visibility text NOT NULL CHECK (visibility IN ('public', 'private')),
    owner      text COLLATE "C" NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE room_members (
    room_id      text COLLATE "C" NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id      text COLLATE "C" NOT NULL,
    role         text NOT NULL CHECK (role IN ('owner', 'member')),
    last_read_id text COLLATE "C" NOT NULL DEFAULT '',
    joined_at    timestamptz NOT NULL,
    -- seq breaks ties between members who joined in the same millisecond.
    seq          bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_user_idx ON room_members (user_id);

-- Read markers of dm channels, which have no membership row to hold them.
CREATE TABLE dm_read_markers (
    channel      text COLLATE "C" NOT NULL,
    user_id      text COLLATE "C" NOT NULL,
    last_read_id text COLLATE "C" NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (channel, user_id)
);

CREATE TABLE messages (
    id            text COLLATE "C" PRIMARY KEY,
    channel       text COLLATE "C" NOT NULL,
    room_id       text COLLATE "C" REFERENCES rooms (id) ON DELETE CASCADE,
    author        text COLLATE "C" NOT NULL,
    body          json NOT NULL,
    created_at    timestamptz NOT NULL,
    edited_at     timestamptz,
    deleted_at    timestamptz,
    idem_key      text,
    stream_epoch  text NOT NULL DEFAULT '',
    stream_offset bigint NOT NULL DEFAULT 0
);
CREATE INDEX messages_channel_id_idx ON messages (channel, id);
CREATE INDEX messages_room_idx ON messages (room_id);
CREATE UNIQUE INDEX messages_author_idem_key_idx ON messages (author, idem_key) WHERE idem_key IS NOT NULL;

CREATE TABLE clips (
    id            text COLLATE "C" PRIMARY KEY,
    owner         text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title         text NOT NULL,
    game          text NOT NULL,
    tags          text[] NOT NULL DEFAULT '{}',
    visibility    text NOT NULL CHECK (visibility IN ('public', 'unlisted', 'private')),
    status        text NOT NULL CHECK (status IN ('uploading', 'processing', 'ready', 'failed')),
    fail_reason   text NOT NULL DEFAULT '',
    size_bytes    bigint NOT NULL DEFAULT 0,
    content_type  text NOT NULL DEFAULT '',
    sha256        text NOT NULL DEFAULT '',
    duration_ms   bigint NOT NULL DEFAULT 0,
    width         integer NOT NULL DEFAULT 0,
    height        integer NOT NULL DEFAULT 0,
    media_key     text NOT NULL DEFAULT '',
    thumbnail_key text NOT NULL DEFAULT '',
    likes         bigint NOT NULL DEFAULT 0,
    views         bigint NOT NULL DEFAULT 0,
    comments      bigint NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX clips_owner_id_idx ON clips (owner, id);

CREATE TABLE clip_likes (
    clip_id    text COLLATE "C" NOT NULL REFERENCES clips (id) ON DELETE CASCADE,
    user_id    text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (clip_id, user_id)
);
CREATE INDEX clip_likes_user_idx ON clip_likes (user_id, created_at);

-- Engagement events are an append-only log; user_id is not a foreign key so
-- the log never blocks on, or is rewritten by, changes to users.
CREATE TABLE clip_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    clip_id    text COLLATE "C" NOT NULL REFERENCES clips (id) ON DELETE CASCADE,
    user_id    text COLLATE "C" NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('view', 'like', 'share', 'skip')),
    watched_ms bigint NOT NULL DEFAULT 0,
    at         timestamptz NOT NULL
);
CREATE INDEX clip_events_clip_idx ON clip_events (clip_id, at);
CREATE INDEX clip_events_user_idx ON clip_events (user_id, at);
CREATE INDEX clip_events_at_idx ON clip_events (at);

CREATE TABLE comments (
    id         text COLLATE "C" PRIMARY KEY,
    clip_id    text COLLATE "C" NOT NULL REFERENCES clips (id) ON DELETE CASCADE,
    author     text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body       text NOT NULL,
    created_at timestamptz NOT NULL
);
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
