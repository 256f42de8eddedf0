package redis

import (
	"context"
	"sync"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"
)

// publisher batches the publishes of concurrent callers into pipelines,
// so a burst of publishes costs a few round trips instead of one each.
//
// While the broker's Run runs, callers queue their call and wait for its
// result; publishWorkers goroutines (started and stopped by Run) each take
// whatever is queued, up to maxBatch calls, and send it as one pipeline.
// While Run does not run, and for a call made while no other is in
// flight, calls go straight to Redis on the caller's goroutine. Either
// way the caller gets its own result. Order between concurrent callers is
// whatever Redis executes; each script assigns its offset atomically, so
// that is always a valid order.
type publisher struct {
	client goredis.UniversalClient

	// mu guards queue: callers hold it shared while they enqueue, stop
	// holds it exclusively to close the queue to new calls, so no call is
	// ever queued after the workers' final drain.
	mu    sync.RWMutex
	queue chan *pubCall // nil while the workers are not running
	stop  chan struct{}
	wg    sync.WaitGroup

	inflight atomic.Int64 // calls in do
}

// publishWorkers is how many pipelines can be in flight at once.
const publishWorkers = 4

// maxBatch caps the calls in one pipeline.
const maxBatch = 256

// pubCall is one queued publish: a script run, or a plain command when
// script is nil.
type pubCall struct {
	ctx    context.Context
	script *goredis.Script
	keys   []string
	args   []any
	val    any
	err    error
	done   chan struct{}
}

// do runs c and returns its result. A call made while no other is in
// flight goes straight to Redis, which spares a lone publisher the hand
// over to a worker; the others queue. Queued calls must not share buffers
// the caller may change once do returns: a caller whose ctx ends returns
// early while its call may still be sent.
func (p *publisher) do(ctx context.Context, c *pubCall) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer p.inflight.Add(-1)
	alone := p.inflight.Add(1) == 1
	p.mu.RLock()
	if p.queue == nil || alone {
		p.mu.RUnlock()
		var cmd *goredis.Cmd
		if c.script != nil {
			cmd = c.script.Run(ctx, p.client, c.keys, c.args...)
		} else {
			cmd = p.client.Do(ctx, c.args...)
		}
		return cmd.Val(), cmd.Err()
	}
	c.ctx = ctx
	c.done = make(chan struct{})
	select {
	case p.queue <- c:
		p.mu.RUnlock()
	case <-ctx.Done():
		p.mu.RUnlock()
		return nil, ctx.Err()
	}
	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// start starts the workers. Their pipelines use a context that carries
// ctx's values but not its cancellation, so the calls queued when Run
// stops are still sent; go-redis's timeouts bound them.
func (p *publisher) start(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	queue, stop := make(chan *pubCall, maxBatch*publishWorkers), make(chan struct{})
	p.mu.Lock()
	p.queue, p.stop = queue, stop
	p.mu.Unlock()
	for range publishWorkers {
		p.wg.Go(func() { p.work(ctx, queue, stop) })
	}
}

// shutdown closes the queue to new calls, lets the workers send what is
// queued, and waits for them.
func (p *publisher) shutdown() {
	p.mu.Lock()
	stop := p.stop
	p.queue, p.stop = nil, nil
	p.mu.Unlock()
	if stop != nil {
		close(stop)
	}
	p.wg.Wait()
}

func (p *publisher) work(ctx context.Context, queue chan *pubCall, stop chan struct{}) {
	batch := make([]*pubCall, 0, maxBatch)
	for {
		select {
		case c := <-queue:
			batch = fill(queue, append(batch, c))
			p.send(ctx, batch)
			clear(batch)
			batch = batch[:0]
		case <-stop:
			// Nobody queues any more: send what is left.
			for {
				if batch = fill(queue, batch[:0]); len(batch) == 0 {
					return
				}
				p.send(ctx, batch)
			}
		}
	}
}

// fill appends to batch what is queued, up to maxBatch calls, without
// waiting.
func fill(queue chan *pubCall, batch []*pubCall) []*pubCall {
	for len(batch) < maxBatch {
		select {
		case c := <-queue:
			batch = append(batch, c)
		default:
			return batch
		}
	}
	return batch
}

// send runs batch as one pipeline and hands each call its result.
func (p *publisher) send(ctx context.Context, batch []*pubCall) {
	var (
		scripts []scriptCall
		owner   []*pubCall
		pipe    goredis.Pipeliner
		plain   []*goredis.Cmd
		plainOf []*pubCall
	)
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil { // its caller has gone
			c.err = err
			close(c.done)
			continue
		}
		if c.script != nil {
			scripts = append(scripts, scriptCall{script: c.script, keys: c.keys, args: c.args})
			owner = append(owner, c)
			continue
		}
		if pipe == nil {
			pipe = p.client.Pipeline()
		}
		plain = append(plain, pipe.Do(ctx, c.args...))
		plainOf = append(plainOf, c)
	}
	if pipe != nil {
		_, _ = pipe.Exec(ctx) // each cmd holds its own error
		for i, cmd := range plain {
			plainOf[i].val, plainOf[i].err = cmd.Val(), cmd.Err()
			close(plainOf[i].done)
		}
	}
	if len(scripts) > 0 {
		runScripts(ctx, p.client, scripts)
		for i, sc := range scripts {
			owner[i].val, owner[i].err = sc.cmd.Val(), sc.cmd.Err()
			close(owner[i].done)
		}
	}
}
