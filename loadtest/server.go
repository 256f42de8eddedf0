package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Metric names read from the server's admin listener.
const (
	MetricGoroutines     = "go_goroutines"
	MetricHeapInuse      = "go_memstats_heap_inuse_bytes"
	MetricStackInuse     = "go_memstats_stack_inuse_bytes"
	MetricRSS            = "process_resident_memory_bytes"
	MetricCPUSeconds     = "process_cpu_seconds_total"
	MetricConnections    = "partyline_connections"
	MetricSubscriptions  = "partyline_subscriptions"
	MetricMessagesOut    = "partyline_messages_out_total"
	MetricFramesOut      = "partyline_frames_out_total"
	MetricSlowConsumers  = "partyline_slow_consumer_closes_total"
	MetricQueueDrops     = "partyline_queue_drops_total"
	MetricFanoutSumSecs  = "partyline_fanout_latency_seconds_sum"
	MetricFanoutCount    = "partyline_fanout_latency_seconds_count"
	MetricBrokerPubCount = "partyline_broker_publish_seconds_count"
)

// Metrics is one scrape of a Prometheus text exposition: series (name plus
// labels exactly as written, like `a{code="1"}`) to value.
type Metrics map[string]float64

// ParseMetrics reads the Prometheus text format. Comments, blank lines and
// timestamps are skipped; a line that is not "series value" is an error.
func ParseMetrics(r io.Reader) (Metrics, error) {
	m := Metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		// Label values may hold spaces, so the series ends at the closing
		// brace when there is one.
		end := strings.IndexByte(text, ' ')
		if open := strings.IndexByte(text, '{'); open >= 0 && (end < 0 || open < end) {
			closing := strings.LastIndexByte(text, '}')
			if closing < open {
				return nil, fmt.Errorf("loadtest: metrics line %d: unclosed labels", line)
			}
			end = closing + 1
		}
		if end <= 0 || end >= len(text) {
			return nil, fmt.Errorf("loadtest: metrics line %d: no value", line)
		}
		fields := strings.Fields(text[end:])
		if len(fields) == 0 {
			return nil, fmt.Errorf("loadtest: metrics line %d: no value", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("loadtest: metrics line %d: %w", line, err)
		}
		m[text[:end]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("loadtest: metrics: %w", err)
	}
	return m, nil
}

// Server observes the gateway under test from outside: its admin
// listener's metrics and pprof, and /proc when its pid is known.
type Server struct {
	// AdminURL is the admin listener, like http://127.0.0.1:9090.
	AdminURL string
	// PID is the server's process id. Zero means CPU time is read from
	// process_cpu_seconds_total instead of /proc.
	PID    int
	Client *http.Client
}

func (s *Server) client() *http.Client {
	if s.Client != nil {
		return s.Client
	}
	return http.DefaultClient
}

func (s *Server) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(s.AdminURL, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("loadtest: admin: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("loadtest: admin %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("loadtest: admin %s: %s", path, resp.Status)
	}
	return body, nil
}

// Metrics scrapes /metrics.
func (s *Server) Metrics(ctx context.Context) (Metrics, error) {
	body, err := s.get(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	return ParseMetrics(bytes.NewReader(body))
}

// GC makes the server run a full garbage collection, by asking pprof for a
// heap profile with gc=1.
func (s *Server) GC(ctx context.Context) error {
	_, err := s.get(ctx, "/debug/pprof/heap?gc=1")
	return err
}

// CPUProfile records the server's CPU profile for d (whole seconds, at
// least one) and writes it to w.
func (s *Server) CPUProfile(ctx context.Context, d time.Duration, w io.Writer) error {
	secs := max(1, int(d/time.Second))
	body, err := s.get(ctx, "/debug/pprof/profile?seconds="+strconv.Itoa(secs))
	if err != nil {
		return err
	}
	_, err = w.Write(body)
	return err
}

// CPU returns the server's CPU time so far (user plus system).
func (s *Server) CPU(ctx context.Context) (time.Duration, error) {
	if s.PID > 0 {
		st, err := ReadProcStat(s.PID)
		if err != nil {
			return 0, err
		}
		return st.CPU, nil
	}
	m, err := s.Metrics(ctx)
	if err != nil {
		return 0, err
	}
	v, ok := m[MetricCPUSeconds]
	if !ok {
		return 0, fmt.Errorf("loadtest: %s is not exported", MetricCPUSeconds)
	}
	return time.Duration(v * float64(time.Second)), nil
}

// clockTicks is USER_HZ, the unit of CPU times in /proc; Linux fixes it at
// 100 on every architecture Go supports.
const clockTicks = 100

// ProcStat is what /proc/<pid>/stat says about a process's resources.
type ProcStat struct {
	CPU time.Duration // utime + stime
	RSS int64         // resident set size in bytes
}

// ReadProcStat reads /proc/<pid>/stat; pid 0 means this process.
func ReadProcStat(pid int) (ProcStat, error) {
	path := "/proc/self/stat"
	if pid > 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/stat"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return ProcStat{}, fmt.Errorf("loadtest: %w", err)
	}
	return parseProcStat(string(b), int64(os.Getpagesize()))
}

// parseProcStat parses a /proc/<pid>/stat line. The command name is in
// parentheses and may hold spaces and parentheses itself, so the fields are
// counted from the last ')'.
func parseProcStat(line string, pageSize int64) (ProcStat, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return ProcStat{}, errors.New("loadtest: /proc stat: no command name")
	}
	// After ")" the fields start at field 3 (state); utime is field 14,
	// stime 15 and rss 24, so they are at 11, 12 and 21 here.
	f := strings.Fields(line[i+1:])
	if len(f) < 22 {
		return ProcStat{}, fmt.Errorf("loadtest: /proc stat: %d fields after the command, want at least 22", len(f))
	}
	num := func(k int) (int64, error) {
		v, err := strconv.ParseInt(f[k], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("loadtest: /proc stat field %d: %w", k+3, err)
		}
		return v, nil
	}
	utime, err := num(11)
	if err != nil {
		return ProcStat{}, err
	}
	stime, err := num(12)
	if err != nil {
		return ProcStat{}, err
	}
	rss, err := num(21)
	if err != nil {
		return ProcStat{}, err
	}
	return ProcStat{
		CPU: time.Duration(utime+stime) * time.Second / clockTicks,
		RSS: rss * pageSize,
	}, nil
}

// MachineBusy reads /proc/stat and returns the CPU time all cores have
// spent on anything but idling and waiting for I/O, summed over cores.
func MachineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("loadtest: %w", err)
	}
	return parseMachineBusy(string(b))
}

// parseMachineBusy sums the first "cpu" line of /proc/stat without idle
// (4th) and iowait (5th); guest time is already inside user time.
func parseMachineBusy(stat string) (time.Duration, error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, errors.New("loadtest: /proc/stat: no cpu line")
	}
	var ticks int64
	for i, v := range f[1:min(len(f), 9)] { // user nice system idle iowait irq softirq steal
		if i == 3 || i == 4 {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("loadtest: /proc/stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// CPUShare is CPU time used over a wall-clock interval as a fraction of one
// core (1.0 is one core fully busy).
func CPUShare(cpu, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return float64(cpu) / float64(wall)
}
