package redisbroker

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

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
	// head is publishScript's arguments before those of each publication.
	head []any
	// single is set in a cluster, where a publishScript call holds one
	// publication (its keys must be in one slot).
	single bool

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

// newPublisher returns the publisher of a broker whose streams keep size
// entries in keys that expire keyTTL after the last publication.
func newPublisher(client goredis.UniversalClient, size int, keyTTL time.Duration) *publisher {
	_, cluster := client.(*goredis.ClusterClient)
	sharded := "0"
	if cluster {
		sharded = "1"
	}
	return &publisher{
		client: client,
		head:   []any{size, keyTTL.Milliseconds(), expiryRefresh.Milliseconds(), sharded},
		single: cluster,
	}
}

// pubCall is one queued call: a publication, or a plain command when pub
// is nil.
type pubCall struct {
	ctx  context.Context
	pub  *publication
	args []any // the plain command
	val  any
	err  error
	done chan struct{}
}

// publication is one Stream.Publish: what publishScript needs of it.
type publication struct {
	meta, stream string
	epoch        string // the candidate, for a channel without one
	payload      []byte
	notify       string // the pub/sub channel
}

// scriptCall returns the publishScript call that makes pubs.
func (p *publisher) scriptCall(pubs []*publication) scriptCall {
	keys := make([]string, 0, 2*len(pubs))
	args := make([]any, len(p.head), len(p.head)+3*len(pubs))
	copy(args, p.head)
	for _, pb := range pubs {
		keys = append(keys, pb.meta, pb.stream)
		args = append(args, pb.epoch, pb.payload, pb.notify)
	}
	return scriptCall{script: publishScript, keys: keys, args: args}
}

// publishReply returns the reply to the i-th publication of a
// publishScript call that replied v.
func publishReply(v any, i int) (any, error) {
	res, ok := v.([]any)
	if !ok || i >= len(res) {
		return nil, fmt.Errorf("unexpected publish reply %T", v)
	}
	if err, ok := res[i].(error); ok {
		return nil, err
	}
	return res[i], nil
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
		if c.pub == nil {
			return p.client.Do(ctx, c.args...).Result()
		}
		sc := p.scriptCall([]*publication{c.pub})
		v, err := sc.script.Run(ctx, p.client, sc.keys, sc.args...).Result()
		if err != nil {
			return nil, err
		}
		return publishReply(v, 0)
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

// send runs batch as one pipeline and hands each call its result. Its
// publications go as one publishScript call, or one each in a cluster.
func (p *publisher) send(ctx context.Context, batch []*pubCall) {
	var (
		pubs    []*publication
		pubOf   []*pubCall
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
		if c.pub != nil {
			pubs = append(pubs, c.pub)
			pubOf = append(pubOf, c)
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
	if len(pubs) == 0 {
		return
	}
	if !p.single {
		sc := []scriptCall{p.scriptCall(pubs)}
		runScripts(ctx, p.client, sc)
		v, err := sc[0].cmd.Result()
		for i, c := range pubOf {
			if err != nil {
				c.err = err
			} else {
				c.val, c.err = publishReply(v, i)
			}
			close(c.done)
		}
		return
	}
	scs := make([]scriptCall, len(pubs))
	for i, pb := range pubs {
		scs[i] = p.scriptCall([]*publication{pb})
	}
	runScripts(ctx, p.client, scs)
	for i, c := range pubOf {
		if v, err := scs[i].cmd.Result(); err != nil {
			c.err = err
		} else {
			c.val, c.err = publishReply(v, 0)
		}
		close(c.done)
	}
}
