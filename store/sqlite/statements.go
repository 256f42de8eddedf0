package sqlite

import "github.com/partyline/partyline/store/internal/sqlstore"

// statements are SQLite's text of the statements that differ from
// PostgreSQL's; sqlstore.Statements documents each.
var statements = sqlstore.Statements{
	// The single writer already makes a write transaction exclusive.
	RowLock: "",
	// Members are listed by (joined_at, seq); the owner is the first.
	AddOwner: `INSERT INTO room_members (room_id, user_id, role, joined_at, seq) VALUES ($1, $2, $3, $4, 1)`,
	// The single writer makes max(seq) + 1 race-free.
	PutMember: `INSERT INTO room_members (room_id, user_id, role, joined_at, seq)
		 VALUES ($1, $2, $3, $4, (SELECT coalesce(max(seq), 0) + 1 FROM room_members WHERE room_id = $1))
		 ON CONFLICT (room_id, user_id) DO UPDATE SET role = excluded.role`,
	AdvanceRoomMarker: `UPDATE room_members SET last_read_id = max(last_read_id, $3) WHERE room_id = $1 AND user_id = $2`,
	UserRooms: `
		WITH mine AS (
		  SELECT r.id, r.name, r.visibility, r.owner, r.created_at, m.role, m.user_id, m.last_read_id,
		         (SELECT x.id FROM messages x
		           WHERE x.channel = 'room:' || r.id AND x.deleted_at IS NULL
		           ORDER BY x.id DESC LIMIT 1) AS last_id
		    FROM room_members m JOIN rooms r ON r.id = m.room_id
		   WHERE m.user_id = $1)
		SELECT mine.id, mine.name, mine.visibility, mine.owner, mine.created_at, mine.role,
		       (SELECT count(*) FROM messages u
		         WHERE u.channel = 'room:' || mine.id AND u.id > mine.last_read_id
		           AND u.deleted_at IS NULL AND u.author <> mine.user_id),
		       l.id, l.channel, l.author, l.body, l.idem_key, l.created_at, l.edited_at,
		       l.stream_epoch, l.stream_offset
		  FROM mine LEFT JOIN messages l ON l.id = mine.last_id
		 ORDER BY max(coalesce(l.created_at, mine.created_at), mine.created_at) DESC, mine.id DESC`,
	Engagement: `WITH ev AS (
		   SELECT e.clip_id, e.at / 3600000 * 3600000 AS hour,
		          sum(e.kind = 'view') AS views,
		          sum(e.kind = 'view' AND ` + sqlstore.Completed + `) AS completes,
		          sum(e.kind = 'skip') AS skips,
		          0 AS likes,
		          sum(e.kind = 'share') AS shares,
		          0 AS comments
		   FROM clip_events e JOIN clips c ON c.id = e.clip_id
		   WHERE e.at >= $1 AND ` + sqlstore.Listable + `
		   GROUP BY 1, 2
		   UNION ALL
		   SELECT clip_id, created_at / 3600000 * 3600000, 0, 0, 0, count(*), 0, 0
		   FROM clip_likes WHERE created_at >= $1 GROUP BY 1, 2
		   UNION ALL
		   SELECT clip_id, created_at / 3600000 * 3600000, 0, 0, 0, 0, 0, count(*)
		   FROM comments WHERE created_at >= $1 GROUP BY 1, 2)
		 SELECT ev.clip_id, c.owner, c.game, c.duration_ms, c.created_at, ev.hour,
		        sum(ev.views), sum(ev.completes), sum(ev.skips), sum(ev.likes), sum(ev.shares), sum(ev.comments)
		 FROM ev JOIN clips c ON c.id = ev.clip_id
		 WHERE ` + sqlstore.Listable + `
		 GROUP BY ev.clip_id, ev.hour`,
	ViewerHistory: `SELECT * FROM (
		   SELECT * FROM (SELECT e.clip_id, c.owner, c.game, c.duration_ms, e.kind, e.watched_ms, e.at
		    FROM clip_events e JOIN clips c ON c.id = e.clip_id
		    WHERE e.user_id = $1 AND e.kind <> 'like' ORDER BY e.at DESC LIMIT $2)
		   UNION ALL
		   SELECT * FROM (SELECT l.clip_id, c.owner, c.game, c.duration_ms, 'like', 0, l.created_at
		    FROM clip_likes l JOIN clips c ON c.id = l.clip_id
		    WHERE l.user_id = $1 ORDER BY l.created_at DESC LIMIT $2))
		 ORDER BY 7 DESC LIMIT $2`,
}
