package summary

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/partyline/partyline/loadtest/metrics"
)

// NewNDJSON returns the --out json=FILE writer: a SampleFunc for
// Registry.OnSample that writes one line per sample to w, in k6's shape,
//
//	{"type":"Point","metric":"ws_msg_rtt","data":{"time":"2006-01-02T15:04:05.999999999Z","value":1.2,"tags":{"scenario":"chat"}}}
//
// preceded, the first time a metric is seen, by
//
//	{"type":"Metric","metric":"ws_msg_rtt","data":{"name":"ws_msg_rtt","type":"trend","contains":"time","thresholds":[],"submetrics":null}}
//
// reg gives each metric's type for that line; nil leaves type and
// contains out. Lines are buffered: call flush once the samples have
// stopped, and before closing w. flush returns the first write error.
func NewNDJSON(w io.Writer, reg *metrics.Registry) (f metrics.SampleFunc, flush func() error) {
	n := &ndjson{bw: bufio.NewWriterSize(w, 64<<10), reg: reg, seen: map[string]bool{}}
	return n.sample, n.flush
}

type ndjson struct {
	reg  *metrics.Registry
	mu   sync.Mutex
	bw   *bufio.Writer
	seen map[string]bool
}

var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

func (n *ndjson) sample(metric string, tags metrics.Tags, v float64, at time.Time) {
	bp := lineBufs.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"type":"Point","metric":`...)
	b = appendString(b, metric)
	b = append(b, `,"data":{"time":"`...)
	b = at.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","value":`...)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendFloat(b, v, 'f', -1, 64)
	}
	b = append(b, `,"tags":{`...)
	for i, k := range slices.Sorted(maps.Keys(tags)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, tags[k])
	}
	b = append(b, "}}}\n"...)

	n.mu.Lock()
	if !n.seen[metric] {
		n.seen[metric] = true
		_, _ = n.bw.Write(n.metricLine(metric))
	}
	// bufio.Writer keeps its first error and returns it from Flush.
	_, _ = n.bw.Write(b)
	n.mu.Unlock()
	*bp = b
	lineBufs.Put(bp)
}

// metricLine is written once per metric, so it may be slow.
func (n *ndjson) metricLine(name string) []byte {
	b := []byte(`{"type":"Metric","metric":`)
	b = appendString(b, name)
	b = append(b, `,"data":{"name":`...)
	b = appendString(b, name)
	if m := n.lookup(name); m != nil {
		contains := "default"
		if m.IsTime {
			contains = "time"
		} else if isBytes(name) {
			contains = "data"
		}
		b = append(b, `,"type":`...)
		b = appendString(b, m.Type.String())
		b = append(b, `,"contains":`...)
		b = appendString(b, contains)
	}
	return append(b, `,"thresholds":[],"submetrics":null}}`+"\n"...)
}

func (n *ndjson) lookup(name string) *metrics.Metric {
	if n.reg == nil {
		return nil
	}
	return n.reg.Lookup(name)
}

func (n *ndjson) flush() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.bw.Flush(); err != nil {
		return fmt.Errorf("summary: write json output: %w", err)
	}
	return nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
