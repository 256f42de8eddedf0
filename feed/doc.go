// Package feed is the social graph (follows) and the clip feeds built on
// it: following, trending and for-you, with the ranking model behind
// for-you and its offline evaluation (Evaluate, run by `partyline
// feed-eval`). It consumes a Store (store/postgres, store/sqlite), received
// in New.
//
// # Feeds
//
// Following is fan-out on read: each page is one store query over the
// followees' public ready clips, newest first by (created_at, id) with a
// keyset cursor, so paging never repeats or skips a clip while new ones
// arrive.
//
// Trending is an HN-style gravity score over decaying engagement points.
// Scores live in memory: rebuilt from the store when Run starts and every
// ResyncInterval (which brings in other nodes' engagement), moved by every
// observed event, and sorted every BoardInterval into immutable boards
// (overall and per game) that requests read without locks.
//
// For-you takes a few hundred candidates from four sources in one store
// query (Store.Candidates: followees, the trending boards, the viewer's
// games, creators they engaged with), scores them with an online logistic
// regression trained by FTRL-Proximal over hashed features, and re-ranks so
// that no creator has more than two clips in a row, without the viewer's
// own clips or clips they watched in full. Nothing about follows or a
// creator's clips is cached, so a new follow counts in the next list.
//
// Trending and for-you pages come from a snapshot: the first page stores
// the ranked ids in a bounded LRU with a TTL and the cursor names it, so
// paging is exact while scores move; every page reads its clips from the
// store, so visibility and counts are current. Snapshots are per process: a
// cursor that outlives its snapshot, or reaches another node, starts a new
// list and the page says "restarted": true.
//
// # Learning
//
// Observe queues an engagement event and never blocks; a full queue drops
// it. Run learns from the queue in batches: one FTRL step per event on the
// features as they were before it, then the clip's counts, its trending
// points and the viewer's profile move. The model is saved to the store
// every SaveInterval and when Run stops, and loaded when Run starts; in a
// cluster each node learns from its own events and the last save wins.
//
// # Concurrency
//
// New starts nothing. Run is the only goroutine the package starts; its
// caller stops it by cancelling ctx. A request starts no goroutines.
// Service.mu (an RWMutex) guards the model, the clip and creator counts and
// the viewer profiles: requests hold it shared while they score, Run
// exclusively while it learns a batch, never while it waits on the store.
// boardMu serializes board rebuilds and is taken before mu. The snapshot
// LRU has its own mutex, never held with the others. Handlers are safe for
// concurrent use.
package feed
