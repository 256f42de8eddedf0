package redis

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
)

// BenchmarkPublish measures Stream.Publish against the shared Redis, with
// 1 and 64 concurrent publishers, each going round 1,000 channels from
// its own starting point: "direct" while
// the broker's Run is not running (one round trip per publish, on the
// caller's goroutine), "batched" while it runs (concurrent publishes share
// pipelines). It reports publishes per second.
func BenchmarkPublish(b *testing.B) {
	c := singleClient(b)
	payload := []byte(`"id":"01JD8XQ0000000000000000000","kind":"message","from":"u_1","ts":1732760000123,"data":{"text":"gg"}`)
	chs := make([]string, 1000)
	for i := range chs {
		chs[i] = fmt.Sprintf("room:bench%d", i)
	}
	for _, mode := range []string{"direct", "batched"} {
		for _, publishers := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/publishers=%d", mode, publishers), func(b *testing.B) {
				e := newEngine(b, c, Options{})
				if mode == "batched" {
					d := newSink()
					runBroker(b, e.Broker, d)
					waitDelivering(b, e.Broker, d, "room:benchup")
				}
				ctx := b.Context()
				b.ReportAllocs()
				b.ResetTimer()
				if publishers == 1 {
					for i := range b.N {
						if _, err := e.Stream.Publish(ctx, chs[i%len(chs)], payload); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					b.SetParallelism((publishers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
					var next atomic.Uint64
					b.RunParallel(func(pb *testing.PB) {
						i := int(next.Add(1)) * 16
						for pb.Next() {
							i++
							if _, err := e.Stream.Publish(ctx, chs[i%len(chs)], payload); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "publishes/s")
			})
		}
	}
}
