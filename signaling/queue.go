package signaling

import "sync"

// serialQueue runs functions one at a time, in the order they were
// pushed, on a goroutine that exists only while the queue is not empty.
// It keeps the order of node messages to one client, and of one room's
// publications, without holding a goroutine per idle participant.
type serialQueue struct {
	v       *Service
	mu      sync.Mutex
	items   []func()
	running bool
}

// push queues f. It never blocks. Once Run is shutting down, f is dropped.
func (q *serialQueue) push(f func()) {
	q.mu.Lock()
	q.items = append(q.items, f)
	if q.running {
		q.mu.Unlock()
		return
	}
	q.running = true
	q.mu.Unlock()
	if !q.v.goTracked(q.drain) {
		q.mu.Lock()
		q.items, q.running = nil, false
		q.mu.Unlock()
	}
}

func (q *serialQueue) drain() {
	for {
		q.mu.Lock()
		if len(q.items) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		batch := q.items
		q.items = nil
		q.mu.Unlock()
		for _, f := range batch {
			f()
		}
	}
}
