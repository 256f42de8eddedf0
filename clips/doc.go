// Package clips is the clip domain: game clips uploaded from the overlay,
// their media, likes, views and comments, and the clip namespace of the
// gateway.
//
// # What it owns
//
// Service serves the clips REST API (Routes at /v1/clips, HandleUpload at
// PUT /v1/clips/{id}/media, HandleUserClips at GET /v1/users/{id}/clips and
// UploadRoutes at /v1/uploads), processes uploaded media, publishes live
// counters (clip.stats on clip:<id>) and announces new clips (clip.new on
// each follower's user:<id>), and is the realtime.Extension of the clip
// namespace. It declares what it consumes: Store (implemented by
// store/postgres and store/sqlite), Blobs (Dir, a local directory, by
// default; object storage fits the same interface), Notifier (the
// realtime Node) and FollowersFunc (feed's follow graph, adapted in
// cmd/partyline because feed imports clips). OpenAPIDoc is this package's
// part of the OpenAPI document.
//
// # Who calls it
//
// cmd/partyline builds a Service with New, passes it to realtime.New among
// the Options.Extensions, attaches the Node with SetNotifier, runs Run for
// the life of the server, and mounts the handlers behind a middleware that
// authenticates a bearer token when one is present and lets anonymous
// requests through: reads of public clips need no account, writes answer
// 401 without one. The upload routes are mounted outside the 1 MiB JSON
// body limit.
//
// # Authorization
//
// A clip is visible to its owner always, and to anyone else only when it is
// ready and public or unlisted; unlisted clips are reachable by id but never
// listed. Everything the caller may not see or change (a private clip, a
// clip of another user on an owner-only route, a comment they neither wrote
// nor own the clip of) is answered exactly like a clip that does not exist:
// 404 with the same detail, so ids cannot be probed. The clip namespace uses
// the same rule for subscribe and presence, and refuses client publishes.
//
// # Uploads
//
// Every upload, direct or resumable, ends in ingestMedia: the body streams
// through a reader that sniffs the first bytes (an MP4 ftyp box with an MP4
// brand, or a WebM EBML header; anything else is 415 before a byte is
// stored), counts (the cap is checked against Content-Length up front, and
// reading stops one byte past it: 413) and hashes (SHA-256, the media's
// ETag) on its way into Blobs.Put, which is atomic. The clip then moves from
// uploading to processing with Store.TransitionClip, a conditional write: of
// two concurrent uploads exactly one wins, and the loser's blob, stored
// under a key of its own, is deleted (409). A crash mid-upload leaves a
// clip still uploading, never a half-visible clip, and a temporary file
// that Dir removes at start once it is a day old (sooner could break a
// write in progress on another node sharing the directory).
//
// Resumable uploads speak tus 1.0.0 with the creation and termination
// extensions, implemented here rather than with tusd's handler: that
// handler needs modules partyline does not otherwise use, and the
// protocol's core is small. What tusd would add (its own id scheme, hooks,
// locking, expiry) would have to be bent to partyline's: one upload per
// clip (so unfinished uploads cannot fill the disk), owner-only access with
// the same 404, problem+json errors, and finishing through ingestMedia.
// An upload is a JSON record and a data file in Options.UploadDir; the
// file's size is the offset, synced after each PATCH, so bytes that arrived
// before a connection broke are kept and the client resumes with HEAD. The
// first bytes are sniffed as soon as they are in, so a wrong file is
// refused early. Upload state is local to a node: with several nodes, route
// /v1/uploads/{id} to one node or share the directory.
//
// # Processing
//
// Off the request path, Run's workers probe each processing clip with
// ffprobe (duration, resolution) and write a JPEG thumbnail of the frame at
// 1 s with ffmpeg, then move it to ready, or to failed with a reason when
// the file does not probe as video. Without the tools (or with
// Options.NoMediaTools) a clip becomes ready with unknown duration and no
// thumbnail, and Run logs once that processing is limited. A failure of the
// machinery leaves the clip processing; the next Run resumes it.
//
// # Concurrency
//
// New starts nothing. Run starts, and waits for before it returns, these
// goroutines: Options.ProcessWorkers processing workers, one stats loop,
// one clip.new fan-out loop (each batch of followers published with
// bounded parallelism), one sweeper of expired resumable uploads, and a
// short-lived one that re-queues clips left processing. They end when Run's
// ctx ends. HTTP handlers run on the server's goroutines. The mutexes are
// independent and never held together or across I/O: workMu (the
// processing and announcement queues), recvMu (clips receiving media in
// this process), the coalescer's mu (clips whose counters moved), the tus
// store's mu (uploads being written) and each limiter's mu (per-user token
// buckets, at most Options.MaxLimiters each).
//
// Counters are exact because the store moves them in the same transaction
// as the like, comment or view. clip.stats carries the counters read when
// it is sent, at most once per Options.StatsInterval per clip, so a burst
// of likes costs one read and one publication per interval.
package clips
