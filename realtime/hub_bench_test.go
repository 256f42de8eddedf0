package realtime

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkHubFanout delivers one publication to 10,000 local subscribers
// through the Hub: the frame is encoded once and queued on every
// connection. Each op is one publication; ns/delivery and
// allocs/delivery divide by the subscriber count. The connections' writers
// are held off, so this measures the Hub and the queues, not the sockets.
func BenchmarkHubFanout(b *testing.B) {
	for _, subs := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			n, err := New(Options{Auth: testAuth{}, SendQueueMessages: 1 << 20, SendQueueBytes: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			if err := n.opts.Broker.Subscribe(context.Background(), "broadcast:bench"); err != nil {
				b.Fatal(err)
			}
			conns := make([]*Conn, subs)
			for i := range conns {
				c := &Conn{node: n, id: fmt.Sprint(i), writing: true} // a writer "runs": none is started
				sub := &subscription{conn: c, channel: "broadcast:bench"}
				sub.live.Store(true)
				if err := n.hub.add(context.Background(), sub); err != nil {
					b.Fatal(err)
				}
				conns[i] = c
			}
			payload := []byte(`"id":"01JD8X0000000000000000000","kind":"notice","ts":1732760000123,"data":{"sent":1732760000123456789,"pad":"xxxxxxxx"}`)
			p := Publication{Position: Position{Epoch: "k3j2"}, Payload: payload}
			reset := func() {
				for _, c := range conns {
					clear(c.queue)
					c.queue, c.queuedBytes = c.queue[:0], 0
				}
			}
			for i := 0; i < 256; i++ { // grow the queues to their steady size
				n.hub.Deliver("broadcast:bench", p)
			}
			reset()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p.Offset = uint64(i + 1)
				n.hub.Deliver("broadcast:bench", p)
				if i%256 == 255 {
					b.StopTimer()
					reset()
					b.StartTimer()
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subs), "ns/delivery")
			b.ReportMetric(testing.AllocsPerRun(1, func() { n.hub.Deliver("broadcast:bench", p) })/float64(subs), "allocs/delivery")
		})
	}
}
