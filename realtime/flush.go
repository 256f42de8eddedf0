package realtime

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/partyline/partyline/realtime/internal/wsframe"
)

// A connection's queue is written in one of two ways. On the fast path
// (the default) the node's flushers frame the messages themselves and write
// them beneath the WebSocket library (realtime/internal/wsframe). With
// Options.DisableWSFastPath the connection's own writer goroutine hands
// each frame to websocket.Conn.Write (writeLoopLibrary). Both pack what is
// queued into frames the same way (pack), so the wire is the same.

// A flusher writes the queued messages of many connections from one
// goroutine, so a fan-out to thousands of connections does not start and
// end a goroutine per connection. Its writes never block: a connection
// whose socket cannot take a whole frame is handed to a goroutine of its
// own (Conn.writeLoop), which finishes with blocking writes, so a slow
// client never holds up the others. A Node has one flusher per P; each
// connection is assigned one for its life.
//
// The goroutine exists only while some connection waits: schedule starts
// it, and it ends when the ready list is empty.
//
// Fairness and packing: connections are served in the order they became
// ready, and one that had more queued by the time its frames went out goes
// back to the end of the list. A connection that waits longer thus packs
// more messages into each frame, which is what keeps a saturated node's
// write count down.
type flusher struct {
	mu      sync.Mutex
	ready   []*Conn
	spare   []*Conn
	running bool

	w *wsframe.NBWrite // the running goroutine's write state
}

// startWriter starts the writer's turn: c goes on its flusher's ready list
// on the fast path, or gets a writer goroutine of its own on the library's.
// The caller has claimed c's writer role (Conn.writing).
func (c *Conn) startWriter() {
	if c.wc == nil {
		go c.writeLoopLibrary()
		return
	}
	c.flusher.schedule(c)
}

// schedule queues c for a flush. The caller has claimed c's writer role
// (Conn.writing); c is on at most one ready list.
func (f *flusher) schedule(c *Conn) {
	f.mu.Lock()
	f.ready = append(f.ready, c)
	start := !f.running
	f.running = true
	f.mu.Unlock()
	if start {
		go f.run()
	}
}

func (f *flusher) run() {
	for {
		f.mu.Lock()
		if len(f.ready) == 0 {
			f.running = false
			f.mu.Unlock()
			return
		}
		batch := f.ready
		f.ready, f.spare = f.spare[:0], nil
		f.mu.Unlock()
		for i, c := range batch {
			c.flush(f)
			batch[i] = nil
		}
		f.mu.Lock()
		if f.spare == nil && cap(batch) <= 1<<16 {
			f.spare = batch[:0]
		}
		f.mu.Unlock()
	}
}

// next takes what is queued for the writer. When nothing is, it ends the
// writer's turn (endTurnLocked).
func (c *Conn) next() []queued {
	c.mu.Lock()
	if len(c.queue) == 0 {
		c.endTurnLocked()
		return nil
	}
	batch := c.queue
	c.queue, c.spare = c.spare[:0], nil
	c.queuedBytes = 0
	c.mu.Unlock()
	return batch
}

// finished is called with a batch that has been written. If more is
// queued, it keeps the batch's array for the queue (when small) and
// reports false; otherwise it ends the writer's turn (endTurnLocked) and
// reports true. One lock serves both.
func (c *Conn) finished(batch []queued) bool {
	clear(batch)
	c.mu.Lock()
	if len(c.queue) > 0 {
		if c.spare == nil && cap(batch) <= 64 {
			c.spare = batch[:0]
		}
		c.mu.Unlock()
		return false
	}
	c.endTurnLocked()
	return true
}

// endTurnLocked ends the writer's turn: writing turns false, and a close
// requested with closeAfterFlush happens now. c.mu is held, and is
// released.
func (c *Conn) endTurnLocked() {
	c.writing = false
	code, reason := c.closeCode, c.closeReason
	c.closeCode = 0
	c.spare = nil
	c.mu.Unlock()
	if code != 0 {
		c.closeNow(code, reason)
	}
}

// recycle keeps a small written batch as the queue's next backing array.
func (c *Conn) recycle(batch []queued) {
	clear(batch)
	c.mu.Lock()
	if c.spare == nil && cap(batch) <= 64 {
		c.spare = batch[:0]
	}
	c.mu.Unlock()
}

// pack gathers batch[i:] into one frame's payload in *bp, after
// wsframe.HeaderMax bytes of room for its header, up to the frame limit
// (at least one message), and returns where it stopped.
func (c *Conn) pack(bp *[]byte, batch []queued, i int) int {
	maxFrame := c.node.opts.MaxFrameBytes
	buf := (*bp)[:wsframe.HeaderMax]
	j := i
	for j < len(batch) {
		b := batch[j].b
		if j > i && len(buf)-wsframe.HeaderMax+1+len(b) > maxFrame {
			break
		}
		if j > i {
			buf = append(buf, '\n')
		}
		buf = append(buf, b...)
		j++
	}
	*bp = buf
	return j
}

// wrote records that msgs went out in one frame.
func (c *Conn) wrote(msgs []queued) {
	now := time.Now()
	for _, m := range msgs {
		c.node.metrics.fanoutLatency.Observe(now.Sub(m.at).Seconds())
	}
	c.node.metrics.messagesOut.Add(float64(len(msgs)))
	c.node.metrics.framesOut.Inc()
}

// writeFailed ends the connection after a failed write; lost messages
// count as queue drops. The socket is closed on another goroutine: when a
// close handshake is under way, CloseNow waits for it, and the flusher
// must not.
func (c *Conn) writeFailed(lost int) {
	c.mu.Lock()
	c.closing, c.queue, c.writing = true, nil, false
	c.mu.Unlock()
	c.node.metrics.queueDrops.Add(float64(lost))
	go c.ws.CloseNow()
}

// flush writes what is queued without blocking, on f's goroutine. If
// more was queued meanwhile, c goes back to the end of the ready list;
// otherwise its turn ends. If the socket cannot take a frame, writeLoop
// takes over.
func (c *Conn) flush(f *flusher) {
	batch := c.next()
	if batch == nil {
		return
	}
	bp := writeBufPool.Get().(*[]byte)
	for i := 0; i < len(batch); {
		j := c.pack(bp, batch, i)
		rest, held, err := c.wc.TryWriteText(f.w, *bp)
		if errors.Is(err, wsframe.ErrWouldBlock) {
			go c.writeLoop(bp, rest, held, batch, i, j)
			return
		}
		if err != nil {
			writeBufPool.Put(bp)
			c.writeFailed(len(batch) - i)
			return
		}
		c.wrote(batch[i:j])
		i = j
	}
	writeBufPool.Put(bp)
	if !c.finished(batch) {
		f.schedule(c)
	}
}

// writeLoop takes over from flush when a socket could not take a frame
// without blocking. It finishes that frame (batch[i:j], whose unsent
// bytes are rest; held says flush left the wsframe.Conn locked in the middle
// of it), then writes the rest of the batch and whatever is queued after
// it with blocking writes, until the queue is empty. The connection's
// other deliveries wait in its queue meanwhile; no one else does.
func (c *Conn) writeLoop(bp *[]byte, rest []byte, held bool, batch []queued, i, j int) {
	defer writeBufPool.Put(bp)
	// A write carries no deadline of its own, which would cost a timer per
	// write; the heartbeat cuts a write that has been stuck past
	// WriteTimeout.
	c.writeStart.Store(time.Now().UnixNano())
	err := c.wc.FinishText(rest, held)
	c.writeStart.Store(0)
	for {
		if err != nil {
			c.writeFailed(len(batch) - i)
			return
		}
		c.wrote(batch[i:j])
		i = j
		if i == len(batch) {
			c.recycle(batch)
			if batch = c.next(); batch == nil {
				return
			}
			i = 0
		}
		j = c.pack(bp, batch, i)
		c.writeStart.Store(time.Now().UnixNano())
		err = c.wc.WriteText(*bp)
		c.writeStart.Store(0)
	}
}

// writeLoopLibrary is the connection's writer when the fast path is off:
// it writes what is queued through the WebSocket library, frame by frame
// with blocking writes, until the queue is empty. Each write may take
// WriteTimeout; past it the library closes the connection.
func (c *Conn) writeLoopLibrary() {
	bp := writeBufPool.Get().(*[]byte)
	defer writeBufPool.Put(bp)
	for batch := c.next(); batch != nil; batch = c.next() {
		for i := 0; i < len(batch); {
			j := c.pack(bp, batch, i)
			ctx, cancel := context.WithTimeout(context.Background(), c.node.opts.WriteTimeout)
			err := c.ws.Write(ctx, websocket.MessageText, (*bp)[wsframe.HeaderMax:])
			cancel()
			if err != nil {
				c.writeFailed(len(batch) - i)
				return
			}
			c.wrote(batch[i:j])
			i = j
		}
		c.recycle(batch)
	}
}
