package signaling_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/signaling"
)

// The voice harness runs only when asked, as it loads the machine:
//
//	PARTYLINE_VOICE_BENCH=1 go test -run 'TestHarness' -v -timeout 20m ./signaling/
//
// The server and every client peer run in this one process, so the CPU
// figures are of both sides together: the server's own share is lower.
func harness(t *testing.T) {
	if os.Getenv("PARTYLINE_VOICE_BENCH") == "" {
		t.Skip("skipping: set PARTYLINE_VOICE_BENCH=1 to run the voice harness")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestHarnessForwarding grows the number of rooms of five with one
// speaker at 50 packets per second (200 forwarded packets per second per
// room) and reports the forwarded rate, the process CPU and the
// allocations per forwarded packet at each step.
func TestHarnessForwarding(t *testing.T) {
	harness(t)
	// Everything the server side starts inherits the label side=server
	// (goroutines inherit pprof labels from their creator), so a CPU
	// profile of this run (go test -cpuprofile) splits the server's share
	// from the client peers': go tool pprof -tagfocus side=server.
	var s *stack
	pprof.Do(context.Background(), pprof.Labels("side", "server"), func(context.Context) {
		s = newStack(t, stackConfig{voice: func(o *signaling.Options) {
			o.ConnectTimeout = 5 * time.Minute
		}})
	})
	steps := []int{10, 25, 50, 75, 100}
	if v := os.Getenv("PARTYLINE_VOICE_BENCH_ROOMS"); v != "" {
		steps = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("PARTYLINE_VOICE_BENCH_ROOMS: %v", err)
			}
			steps = append(steps, n)
		}
	}
	api := loopbackAPI(t)
	const window = 5 * time.Second
	rooms := 0
	for _, target := range steps {
		for ; rooms < target; rooms++ {
			id := fmt.Sprintf("r%d", rooms)
			makeRoom(t, s.db, id, id+"u0", id+"u1", id+"u2", id+"u3", id+"u4")
			var ps []*peer
			for i := range 5 {
				p := newPeer(t, api, s.dial(fmt.Sprintf("%su%d", id, i)))
				p.send.Store(i == 0) // one speaker
				p.join(id)
				ps = append(ps, p)
			}
			for _, p := range ps[1:] {
				p.hearsAll(t, 20*time.Second, id+"u0")
			}
		}
		time.Sleep(time.Second) // settle
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		f0, c0, t0 := s.metric("partyline_voice_forwarded_packets_total"), cpuTime(), time.Now()
		drop0 := s.metric("partyline_voice_dropped_packets_total", "reason", "queue_full")
		// PARTYLINE_VOICE_PROFILE=file writes a CPU profile of the window
		// of the last step: go tool pprof -tags shows the server's share.
		var prof *os.File
		if name := os.Getenv("PARTYLINE_VOICE_PROFILE"); name != "" && target == steps[len(steps)-1] {
			f, err := os.Create(name)
			if err != nil {
				t.Fatal(err)
			}
			prof = f
			if err := pprof.StartCPUProfile(f); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(window)
		if prof != nil {
			pprof.StopCPUProfile()
			prof.Close()
		}
		f1, c1, t1 := s.metric("partyline_voice_forwarded_packets_total"), cpuTime(), time.Now()
		drop1 := s.metric("partyline_voice_dropped_packets_total", "reason", "queue_full")
		runtime.ReadMemStats(&ms1)
		wall := t1.Sub(t0).Seconds()
		pps := (f1 - f0) / wall
		cores := (c1 - c0).Seconds() / wall
		t.Logf("rooms=%d forwarded=%.0f pkt/s (want %d) process_cpu=%.2f cores => %.0f pkt/s per core; allocs/forwarded pkt (whole process)=%.1f; queue drops=%.0f",
			rooms, pps, rooms*200, cores, pps/cores, float64(ms1.Mallocs-ms0.Mallocs)/(f1-f0), drop1-drop0)
	}
}

// TestHarnessJoinLatency measures voice.join to the first RTP packet from
// the room's speaker, over 100 sequential joins on fresh PeerConnections.
func TestHarnessJoinLatency(t *testing.T) {
	harness(t)
	s := newStack(t, stackConfig{})
	makeRoom(t, s.db, "r1", "speaker", "listener")
	api := loopbackAPI(t)
	speaker := newPeer(t, api, s.dial("speaker"))
	speaker.join("r1")
	p := newPeer(t, api, s.dial("listener"))
	var lat []time.Duration
	for i := range 100 {
		if i > 0 {
			p.renew(api) // a fresh PeerConnection for each join
		}
		start := time.Now()
		p.join("r1")
		testenv.Eventually(t, "first RTP", func() bool { return p.packetsFrom("speaker") > 0 })
		p.mu.Lock()
		lat = append(lat, p.firstRTP.Sub(start))
		p.mu.Unlock()
		p.c.OK(map[string]any{"type": "voice.leave", "room": "r1"})
	}
	slices.Sort(lat)
	t.Logf("join -> first RTP over %d joins: p50=%v p99=%v min=%v max=%v",
		len(lat), lat[len(lat)/2], lat[len(lat)*99/100], lat[0], lat[len(lat)-1])
}
