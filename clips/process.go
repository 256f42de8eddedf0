package clips

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/partyline/partyline"
)

// enqueue queues the clip for processing; Run's workers take it.
func (s *Service) enqueue(id string) {
	s.workMu.Lock()
	if !s.queued[id] {
		s.queued[id] = true
		s.toProcess = append(s.toProcess, id)
	}
	s.workMu.Unlock()
	select {
	case s.wakeProc <- struct{}{}:
	default:
	}
}

// next takes the next clip to process, "" when none.
func (s *Service) next() string {
	s.workMu.Lock()
	defer s.workMu.Unlock()
	if len(s.toProcess) == 0 {
		return ""
	}
	id := s.toProcess[0]
	s.toProcess = s.toProcess[1:]
	delete(s.queued, id)
	if len(s.toProcess) > 0 {
		select { // more work: wake another worker
		case s.wakeProc <- struct{}{}:
		default:
		}
	}
	return id
}

// processLoop processes queued clips until ctx ends.
func (s *Service) processLoop(ctx context.Context) {
	for {
		id := s.next()
		if id == "" {
			select {
			case <-ctx.Done():
				return
			case <-s.wakeProc:
				continue
			}
		}
		s.process(ctx, id)
		if ctx.Err() != nil {
			return
		}
	}
}

// resume queues the clips a previous run left in processing.
func (s *Service) resume(ctx context.Context) {
	cs, err := s.store.ClipsWithStatus(ctx, StatusProcessing, 200)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("resuming clip processing failed", "err", err)
		}
		return
	}
	for _, c := range cs {
		s.enqueue(c.ID)
	}
}

// probeInfo is what processing learns of a clip.
type probeInfo struct {
	DurationMS    int64
	Width, Height int
}

// process probes the clip's media, writes its thumbnail and moves it from
// processing to ready, or to failed when the media is not a video. Without
// ffprobe and ffmpeg the clip becomes ready as it is. A failure of the
// machinery (blobs, store) leaves the clip processing, and a restart
// resumes it.
func (s *Service) process(ctx context.Context, id string) {
	c, err := s.store.GetClip(ctx, id)
	if errors.Is(err, partyline.ErrNotFound) || (err == nil && c.Status != StatusProcessing) {
		return
	}
	if err != nil {
		s.log.Warn("processing: reading the clip failed", "clip", id, "err", err)
		return
	}
	c.Status = StatusReady
	if s.ffprobe != "" {
		pctx, cancel := context.WithTimeout(ctx, s.opts.ProcessTimeout)
		err = s.probe(pctx, &c)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("processing a clip failed; it stays processing", "clip", id, "err", err)
			}
			return
		}
	}
	c.UpdatedAt = time.Time{}
	if err := s.store.TransitionClip(ctx, c, StatusProcessing); err != nil {
		s.deleteBlobs(context.WithoutCancel(ctx), c.ThumbnailKey)
		if !errors.Is(err, partyline.ErrNotFound) && !errors.Is(err, partyline.ErrConflict) {
			s.log.Warn("processing: saving the result failed", "clip", id, "err", err)
		}
		return
	}
	if c.Status == StatusReady {
		s.announce(c)
	}
}

// probe runs ffprobe and ffmpeg on the clip's media and fills c. Media that
// does not probe as video sets c.Status to failed with the reason; the
// error is for failures of the machinery only.
func (s *Service) probe(ctx context.Context, c *Clip) error {
	dir, err := os.MkdirTemp("", "partyline-clip-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path, err := s.localMedia(ctx, c.MediaKey, dir)
	if err != nil {
		return err
	}
	info, reason := s.ffprobeInfo(ctx, path)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if reason != "" {
		c.Status, c.FailReason = StatusFailed, reason
		return nil
	}
	c.DurationMS, c.Width, c.Height = info.DurationMS, info.Width, info.Height
	thumb := filepath.Join(dir, "thumb.jpg")
	if err := s.thumbnail(ctx, path, thumb, info.DurationMS); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// A clip that plays is ready even when no frame could be taken.
		s.log.Info("processing: no thumbnail", "clip", c.ID, "err", err)
		return nil
	}
	f, err := os.Open(thumb)
	if err != nil {
		return err
	}
	defer f.Close()
	key := blobKey(c.ID, "thumb", ".jpg")
	if _, err := s.blobs.Put(ctx, key, f); err != nil {
		return err
	}
	c.ThumbnailKey = key
	return nil
}

// localMedia returns a local file with the blob: the blob's own file when
// Blobs keeps local files, or a copy in dir.
func (s *Service) localMedia(ctx context.Context, key, dir string) (string, error) {
	if path, ok := s.blobs.LocalPath(key); ok {
		return path, nil
	}
	b, err := s.blobs.Get(ctx, key)
	if err != nil {
		return "", err
	}
	if b.Content == nil {
		return "", fmt.Errorf("blob %s is only reachable by URL", key)
	}
	defer b.Content.Close()
	path := filepath.Join(dir, "media")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, b.Content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return path, err
}

// ffprobeInfo reads the duration and resolution of the first video stream.
// reason is set when the file is not a video ffprobe can read.
func (s *Service) ffprobeInfo(ctx context.Context, path string) (info probeInfo, reason string) {
	cmd := exec.CommandContext(ctx, s.ffprobe, "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=codec_type,width,height:format=duration", "-of", "json", "--", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return info, "the file does not probe as a video"
	}
	var probed struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &probed); err != nil {
		return info, "the file does not probe as a video"
	}
	if len(probed.Streams) == 0 || probed.Streams[0].CodecType != "video" || probed.Streams[0].Width <= 0 {
		return info, "the file has no video stream"
	}
	info.Width, info.Height = probed.Streams[0].Width, probed.Streams[0].Height
	if d, err := strconv.ParseFloat(probed.Format.Duration, 64); err == nil && d > 0 {
		info.DurationMS = int64(d * 1000)
	}
	return info, ""
}

// thumbnail writes a JPEG of the frame at 1 s (the first frame of a
// shorter clip) to out, at most 640 pixels wide.
func (s *Service) thumbnail(ctx context.Context, in, out string, durationMS int64) error {
	at := "1"
	if durationMS > 0 && durationMS <= 1000 {
		at = "0"
	}
	cmd := exec.CommandContext(ctx, s.ffmpeg, "-nostdin", "-v", "error", "-y", "-ss", at, "-i", in,
		"-frames:v", "1", "-vf", "scale='min(640,iw)':-2", "-f", "image2", "-c:v", "mjpeg", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ffmpeg: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	if st, err := os.Stat(out); err != nil || st.Size() == 0 {
		return errors.New("ffmpeg wrote no frame")
	}
	return nil
}
