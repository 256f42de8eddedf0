// Package clips is the clip domain: game clips uploaded from the overlay,
// their media, likes, views and comments, and the clip namespace of the
// gateway. It serves the clips REST API (clips, their media, a user's
// clips, resumable uploads), processes uploaded media, publishes live
// counters (clip.stats on clip:<id>) and announces new clips (clip.new on
// each follower's user:<id>). It declares what it consumes and receives it
// in New: Store (store/postgres, store/sqlite), Blobs (Dir, a local
// directory, by default), a Notifier (the Node) and the followers of a
// user (feed's graph); it registers its namespace with the Node.
//
// # Visibility
//
// A clip is visible to its owner always, and to anyone else only when it
// is ready and public or unlisted; unlisted clips are reachable by id but
// never listed. Anything the caller may not see or change is answered
// exactly like a clip that does not exist (404, same detail), so ids cannot
// be probed. The clip namespace uses the same rule for subscribe and
// presence, and refuses client publishes.
//
// # Uploads and processing
//
// Every upload, direct or resumable, ends in ingestMedia: the body is
// sniffed (MP4 or WebM, else 415 before a byte is stored), capped (413)
// and hashed (SHA-256, the media's ETag) on its way into Blobs.Put, which
// is atomic. Store.TransitionClip then moves the clip from uploading to
// processing with a conditional write, so of two concurrent uploads exactly
// one wins (the loser's blob is deleted, 409), and a crash leaves a clip
// uploading, never half visible. Resumable uploads speak tus 1.0.0 with the
// creation and termination extensions, implemented here to keep one upload
// per clip, owner-only access with the same 404, and problem+json errors;
// an upload is a record and a data file in Options.UploadDir, whose size
// is the offset, locked across nodes that share the directory (flock).
// Processing probes each clip with ffprobe and writes a thumbnail with
// ffmpeg; without them a clip becomes ready with unknown duration. A
// failure of the machinery leaves the clip processing for the next Run.
//
// Counters are exact because the store moves them in the same transaction
// as the like, comment or view. clip.stats carries the counters read when
// it is sent, at most once per Options.StatsInterval per clip.
//
// # Concurrency
//
// New starts nothing. Run starts these goroutines and waits for them
// before it returns, once its ctx ends: Options.ProcessWorkers processing
// workers, one stats loop, one clip.new fan-out loop (each batch of
// followers published with bounded parallelism), one sweeper of expired
// resumable uploads, and a short-lived one that re-queues clips left
// processing. HTTP handlers run on the server's goroutines. The mutexes
// are independent and never held together or across I/O: workMu (the
// processing and announcement queues), recvMu (clips receiving media in
// this process), the coalescer's mu (clips whose counters moved), the tus
// store's mu (uploads being written in this process) and each limiter's mu
// (per-user token buckets).
package clips
