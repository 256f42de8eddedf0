package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/partyline/partyline/internal/auth"
	"github.com/partyline/partyline/realtime/wire"
)

// maxReadBytes is the client's frame limit; above the server's 64 KiB
// default so a packed frame is never refused.
const maxReadBytes = 1 << 20

// DialOptions says where and as whom the load client connects.
type DialOptions struct {
	// URL is the WebSocket endpoint, like ws://127.0.0.1:8080/v1/ws.
	URL string
	// JWTSecret is the server's HS256 secret; tokens are minted with it.
	JWTSecret string
	// UserPrefix names the users: connection i is user <prefix><i>, so
	// every connection is a distinct user. Zero means "lt_".
	UserPrefix string
	// Concurrency is how many connections are set up at once. Zero means 64.
	Concurrency int
	// Timeout bounds one connection's dial, hello and sub. Zero means 15 s.
	Timeout time.Duration
	// Attempts is how often a failed connection is tried. Zero means 3.
	Attempts int
	// HTTPClient performs the upgrade. Nil means a client made for the run.
	HTTPClient *http.Client
}

func (o *DialOptions) setDefaults() error {
	if o.URL == "" {
		return errors.New("loadtest: the WebSocket URL is required")
	}
	if o.JWTSecret == "" {
		return errors.New("loadtest: the JWT secret is required to mint tokens")
	}
	if o.UserPrefix == "" {
		o.UserPrefix = "lt_"
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Transport: &http.Transport{DisableCompression: true}}
	}
	return nil
}

// User returns the id of connection i's user.
func (o *DialOptions) User(i int) string { return o.UserPrefix + strconv.Itoa(i) }

// Sub is one subscribed connection. Its reader goroutine, started as soon
// as it is subscribed, is the only one touching it after setup.
type Sub struct {
	ws     *websocket.Conn
	index  int
	last   uint64 // last offset seen on the channel
	closed atomic.Bool
}

// Fleet is a set of subscribed connections and their reader goroutines.
// Dial builds it and starts the readers; Close closes every connection and
// waits for the readers to end.
type Fleet struct {
	subs    []*Sub
	rec     atomic.Pointer[Recorder]
	wg      sync.WaitGroup
	lost    atomic.Int64 // connections that ended before Close
	lostErr atomic.Value // the first of their errors
	closing atomic.Bool
}

// ChannelFunc names the channel connection i subscribes to.
type ChannelFunc func(i int, user string) string

// OwnUserChannel subscribes each connection to its user's channel.
func OwnUserChannel(_ int, user string) string { return "user:" + user }

// SameChannel subscribes every connection to ch.
func SameChannel(ch string) ChannelFunc { return func(int, string) string { return ch } }

// Dial opens n connections, each saying hello as its own user and
// subscribing to channel(i, user). Each connection's reader starts as soon
// as it is subscribed, as a real client's would, and hands every frame to
// the Fleet's Recorder, rec at first (nil: frames are read and dropped),
// spreading connections over its shards. Dial returns when all are subscribed, or with the first error
// after closing the ones it opened and waiting for their readers.
func Dial(ctx context.Context, opts DialOptions, n int, channel ChannelFunc, rec *Recorder) (*Fleet, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	signer, err := auth.NewSigner([]byte(opts.JWTSecret), "", "")
	if err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	f := &Fleet{subs: make([]*Sub, n)}
	f.rec.Store(rec)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Concurrency)
	for i := 0; i < n; i++ {
		g.Go(func() error {
			user := opts.User(i)
			token, _, err := signer.Sign(user, 2*time.Hour)
			if err != nil {
				return err
			}
			var s *Sub
			for attempt := 1; ; attempt++ {
				s, err = dialOne(gctx, &opts, token, channel(i, user))
				if err == nil || attempt >= opts.Attempts || gctx.Err() != nil {
					break
				}
				select {
				case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
				case <-gctx.Done():
				}
			}
			if err != nil {
				return fmt.Errorf("loadtest: connection %d (%s): %w", i, user, err)
			}
			s.index = i
			f.subs[i] = s
			f.wg.Add(1)
			go f.read(s)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// reply is the part of an ok or error reply that setup looks at.
type reply struct {
	Type    string `json:"type"`
	ID      int    `json:"-"`
	RawID   any    `json:"id"` // a request id in replies, a string in msgs
	Code    string `json:"code"`
	Message string `json:"message"`
	Offset  uint64 `json:"offset"`
}

// decodeReply decodes one message of the setup exchange. Publications can
// arrive between the replies, as soon as the first sub is in place; their
// id is a message id, a string, and they are no reply (ID 0).
func decodeReply(msg []byte) (reply, error) {
	var r reply
	if err := json.Unmarshal(msg, &r); err != nil {
		return r, fmt.Errorf("reply %q: %w", msg, err)
	}
	if id, ok := r.RawID.(float64); ok && (r.Type == "ok" || r.Type == "error") {
		r.ID = int(id)
	}
	return r, nil
}

// helloFrame packs hello (request 1) and a sub to each channel (requests
// 2 on) into one frame: the protocol lets a client pack messages.
func helloFrame(token string, channels []string) []byte {
	frame, _ := json.Marshal(map[string]any{"type": "hello", "id": 1, "token": token, "client": "loadtest"})
	for i, ch := range channels {
		sub, _ := json.Marshal(map[string]any{"type": "sub", "id": 2 + i, "channel": ch})
		frame = append(append(frame, '\n'), sub...)
	}
	return frame
}

// awaitHello reads frames with next until hello and the n subs of
// helloFrame are all answered, and returns the offset the first sub's
// reply gave. An error reply to any of them is an error.
func awaitHello(next func() ([]byte, error), n int) (first uint64, err error) {
	pending := 1 + n
	for pending > 0 {
		data, err := next()
		if err != nil {
			return 0, err
		}
		err = wire.Split(data, func(msg []byte) error {
			r, err := decodeReply(msg)
			if err != nil {
				return err
			}
			switch {
			case r.ID < 1 || r.ID > 1+n: // a publication, or no reply of ours
			case r.Type == "error":
				return fmt.Errorf("request %d: %s: %s", r.ID, r.Code, r.Message)
			case r.Type == "ok":
				if r.ID == 2 {
					first = r.Offset
				}
				pending--
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	return first, nil
}

// dialOne connects, and sends hello and a sub for each channel in one frame
// (the protocol lets a client pack messages), then waits for every reply.
// The Sub's offset is the first channel's.
func dialOne(ctx context.Context, opts *DialOptions, token string, channels ...string) (*Sub, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, opts.URL, &websocket.DialOptions{
		HTTPClient:      opts.HTTPClient,
		Subprotocols:    []string{wire.Subprotocol},
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(maxReadBytes)
	if err := ws.Write(ctx, websocket.MessageText, helloFrame(token, channels)); err != nil {
		ws.CloseNow()
		return nil, err
	}
	first, err := awaitHello(func() ([]byte, error) {
		_, data, err := ws.Read(ctx)
		return data, err
	}, len(channels))
	if err != nil {
		ws.CloseNow()
		return nil, err
	}
	return &Sub{ws: ws, last: first}, nil
}

// Len returns the number of connections.
func (f *Fleet) Len() int { return len(f.subs) }

// Lost returns how many connections ended before Close, and the first
// error one of them ended with.
func (f *Fleet) Lost() (int64, error) {
	err, _ := f.lostErr.Load().(error)
	return f.lost.Load(), err
}

// frameBufs holds read buffers. A reader takes one only after a frame's
// header has arrived, so idle connections hold none.
var frameBufs = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// SetRecorder makes the readers hand frames to rec from now on (nil: drop
// them). Frames being handled keep the Recorder they started with.
func (f *Fleet) SetRecorder(rec *Recorder) { f.rec.Store(rec) }

func (f *Fleet) read(s *Sub) {
	defer f.wg.Done()
	// A context that is never done: coder/websocket then arms no
	// cancellation per read, which with 10,000 readers would be the
	// client's largest cost. Close ends the reads by closing the sockets.
	ctx := context.Background()
	for {
		_, r, err := s.ws.Reader(ctx)
		if err != nil {
			if !f.closing.Load() && s.closed.CompareAndSwap(false, true) {
				f.lost.Add(1)
				f.lostErr.CompareAndSwap(nil, err)
			}
			return
		}
		now := time.Now().UnixNano()
		bp := frameBufs.Get().(*[]byte)
		buf, err := readAll((*bp)[:0], r)
		if rec := f.rec.Load(); err == nil && rec != nil {
			rec.Frame(s.index, now, buf, &s.last)
		}
		*bp = buf[:0]
		frameBufs.Put(bp)
		if err != nil {
			if !f.closing.Load() && s.closed.CompareAndSwap(false, true) {
				f.lost.Add(1)
				f.lostErr.CompareAndSwap(nil, err)
			}
			s.ws.CloseNow()
			return
		}
	}
}

// readAll appends r's content to buf, growing it as needed.
func readAll(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// Close closes every connection without the close handshake and waits for
// the readers to end. It is safe to call more than once.
func (f *Fleet) Close() {
	f.closing.Store(true)
	for _, s := range f.subs {
		if s != nil {
			s.ws.CloseNow()
		}
	}
	f.wg.Wait()
}
