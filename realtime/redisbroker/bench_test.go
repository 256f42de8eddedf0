package redisbroker

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/partyline/partyline/realtime/realtimetest"
)

// BenchmarkPublish measures Stream.Publish against the shared Redis, with
// 1 and 64 concurrent publishers, each going round 1,000 channels from
// its own starting point: "direct" while
// the broker's Run is not running (one round trip per publish, on the
// caller's goroutine), "batched" while it runs (concurrent publishes share
// pipelines). It reports publishes per second, and the CPU time Redis
// spent per publish (user and system, from INFO), which does not depend on
// how much of the machine the benchmark's own side took.
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
					d := realtimetest.NewRecorder()
					runBroker(b, e.Broker, d)
					waitDelivering(b, e.Broker, d, "room:benchup")
				}
				ctx := b.Context()
				b.ReportAllocs()
				cpu0 := redisCPU(b, c)
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
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "publishes/s")
				b.ReportMetric((redisCPU(b, c)-cpu0)*1e6/float64(b.N), "redis-µs/publish")
			})
		}
	}
}

// redisCPU returns the CPU time the Redis server has used, in seconds.
func redisCPU(b *testing.B, c goredis.UniversalClient) float64 {
	info, err := c.Info(b.Context(), "cpu").Result()
	if err != nil {
		b.Fatalf("INFO cpu: %v", err)
	}
	var total float64
	for line := range strings.Lines(info) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("INFO cpu: %s: %v", line, err)
			}
			total += f
		}
	}
	return total
}
