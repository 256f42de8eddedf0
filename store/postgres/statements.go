package postgres

import (
	"fmt"

	"github.com/partyline/partyline/store/internal/sqlstore"
)

// statements are PostgreSQL's text of the statements that differ from
// SQLite's; sqlstore.Statements documents each.
var statements = sqlstore.Statements{
	// Concurrent inserts with one idempotency key wait on the row lock.
	RowLock: " FOR UPDATE",
	// seq, an identity column, breaks ties of joined_at.
	AddOwner: `INSERT INTO room_members (room_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)`,
	PutMember: `INSERT INTO room_members (room_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)
		 ON CONFLICT (room_id, user_id) DO UPDATE SET role = excluded.role`,
	AdvanceRoomMarker: `UPDATE room_members SET last_read_id = GREATEST(last_read_id, $3) WHERE room_id = $1 AND user_id = $2`,
	UserRooms: `
		SELECT r.id, r.name, r.visibility, r.owner, r.created_at, m.role,
		       (SELECT count(*) FROM messages u
		         WHERE u.channel = 'room:' || r.id AND u.id > m.last_read_id
		           AND u.deleted_at IS NULL AND u.author <> m.user_id),
		       l.id, l.channel, l.author, l.body, l.idem_key, l.created_at, l.edited_at,
		       l.stream_epoch, l.stream_offset
		  FROM room_members m
		  JOIN rooms r ON r.id = m.room_id
		  LEFT JOIN LATERAL (
		       SELECT * FROM messages x
		        WHERE x.channel = 'room:' || r.id AND x.deleted_at IS NULL
		        ORDER BY x.id DESC LIMIT 1) l ON true
		 WHERE m.user_id = $1
		 ORDER BY GREATEST(l.created_at, r.created_at) DESC, r.id DESC`,
	Engagement: `WITH ev AS (
		   SELECT e.clip_id, ` + hourOf("e.at") + ` AS hour,
		          count(*) FILTER (WHERE e.kind = 'view') AS views,
		          count(*) FILTER (WHERE e.kind = 'view' AND ` + sqlstore.Completed + `) AS completes,
		          count(*) FILTER (WHERE e.kind = 'skip') AS skips,
		          0::bigint AS likes,
		          count(*) FILTER (WHERE e.kind = 'share') AS shares,
		          0::bigint AS comments
		   FROM clip_events e JOIN clips c ON c.id = e.clip_id
		   WHERE e.at >= $1 AND ` + sqlstore.Listable + `
		   GROUP BY 1, 2
		   UNION ALL
		   SELECT clip_id, ` + hourOf("created_at") + `, 0, 0, 0, count(*), 0, 0
		   FROM clip_likes WHERE created_at >= $1 GROUP BY 1, 2
		   UNION ALL
		   SELECT clip_id, ` + hourOf("created_at") + `, 0, 0, 0, 0, 0, count(*)
		   FROM comments WHERE created_at >= $1 GROUP BY 1, 2)
		 SELECT ev.clip_id, c.owner, c.game, c.duration_ms, c.created_at, ev.hour,
		        sum(ev.views)::bigint, sum(ev.completes)::bigint, sum(ev.skips)::bigint,
		        sum(ev.likes)::bigint, sum(ev.shares)::bigint, sum(ev.comments)::bigint
		 FROM ev JOIN clips c ON c.id = ev.clip_id
		 WHERE ` + sqlstore.Listable + `
		 GROUP BY ev.clip_id, c.owner, c.game, c.duration_ms, c.created_at, ev.hour`,
	ViewerHistory: `SELECT * FROM (
		   (SELECT e.clip_id, c.owner, c.game, c.duration_ms, e.kind, e.watched_ms, e.at
		    FROM clip_events e JOIN clips c ON c.id = e.clip_id
		    WHERE e.user_id = $1 AND e.kind <> 'like' ORDER BY e.at DESC LIMIT $2)
		   UNION ALL
		   (SELECT l.clip_id, c.owner, c.game, c.duration_ms, 'like', 0::bigint, l.created_at
		    FROM clip_likes l JOIN clips c ON c.id = l.clip_id
		    WHERE l.user_id = $1 ORDER BY l.created_at DESC LIMIT $2)) h
		 ORDER BY 7 DESC LIMIT $2`,
}

// hourOf is the timestamptz expression col cut down to its hour.
func hourOf(col string) string {
	return fmt.Sprintf(`to_timestamp(floor(extract(epoch FROM %s) / 3600) * 3600)`, col)
}
