// Package feed is the social graph (follows) and the clip feeds built on
// it: following, trending and for-you, with the ranking model behind
// for-you and its offline evaluation.
//
// # Feeds
//
// Following is fan-out on read: each page is one store query over the
// followees' public ready clips, newest first by (created_at, id) with a
// keyset cursor, so a new post shows up at once and paging never repeats
// or skips a clip while new ones arrive.
//
// Trending is an HN-style gravity score, decayed points / (age in hours +
// 2)^gravity, where likes, completed views, comments and shares add points
// that decay with a half-life. Scores live in memory, per clip: they are
// rebuilt from the store's engagement when Run starts, moved by every
// observed event, and rebuilt from the store every ResyncInterval, which
// brings in engagement recorded on other nodes. Every BoardInterval Run
// sorts them into immutable boards (overall and per game) that requests
// read without locks; no request computes a score.
//
// For-you takes a few hundred candidates from four sources (clips of the
// people the viewer follows, the trending boards overall and for the
// viewer's favourite games, the newest clips of those games, and the newest
// clips of creators the viewer engaged with), scores each with an online
// logistic regression trained by FTRL-Proximal over hashed features
// (viewer x game, viewer x creator, the viewer's taste for the game and the
// creator, the clip's popularity, completion and like rates, age and
// length, the creator's popularity), and re-ranks so that no creator has
// more than two clips in a row, without the viewer's own clips or clips
// they watched in full. Each item names the source that offered it.
//
// Building a for-you list costs the store one query for all four sources
// (Store.Candidates), which reads clip ids from the partial indexes,
// deduplicates them and returns only what ranking needs of each clip
// (owner, game, length, age); it is written so that PostgreSQL runs it on
// a cached generic plan. A viewer whose profile is not in memory costs one
// more query before it (ViewerHistory), and the page one after it
// (ListableClips). Nothing about the viewer's follows or a creator's
// clips is cached, so a new follow, an unfollow and a followee's new clip
// count in the next list at once.
//
// # Paging ranked feeds
//
// Trending and for-you pages come from a snapshot: the first page stores
// the ranked list (ids, sources and scores only) in a bounded LRU with a
// TTL, and the cursor names the snapshot and an offset. Paging a snapshot
// is exact: nothing repeats or goes missing while scores move. Every page,
// the first included, reads its clips from the store in one query, so a
// clip made private since the list was built is left out and the counts
// shown are current. Snapshots are per process: a cursor that comes back after the
// TTL or an eviction, or reaches another node in a cluster, starts a new
// list, and the page says "restarted": true so the client replaces what
// it shows. A shared snapshot store would lift this; the per-node LRU keeps
// requests free of extra round trips.
//
// # Learning
//
// Observe queues an engagement event (a view with how long it was watched,
// a like, a share, a skip) and never blocks; a full queue drops the event.
// Run learns from the queue in batches off the request path: the model
// takes one FTRL step per event on the features as they were before it,
// then the clip's counts, its trending points and the viewer's profile
// move. The model is saved to the store (SaveModel) every SaveInterval and
// when Run stops, and loaded when Run starts. Each node learns from its own
// events and saves the same row, so in a cluster the last save wins.
//
// Evaluate replays a synthetic world with planted tastes through the same
// ranker and compares it with the popularity baseline; `partyline
// feed-eval` prints the result.
//
// # Concurrency
//
// New starts nothing. Run is the only goroutine the package starts on its
// own; its caller stops it by cancelling ctx. A for-you request starts no
// goroutines: its store queries run one after another. Feed.mu (an RWMutex) guards the model, the clip and creator
// counts and the viewer profiles: requests hold it shared while they
// score, Run exclusively while it learns a batch, never while it waits on
// the store. boardMu serializes board rebuilds and is taken before mu. The
// snapshot LRU has its own mutex, never held with the others. Handlers are
// safe for concurrent use.
package feed
