package summary

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline/loadtest/metrics"
)

type ndLine struct {
	Type   string `json:"type"`
	Metric string `json:"metric"`
	Data   struct {
		Name       string            `json:"name"`
		Type       string            `json:"type"`
		Contains   string            `json:"contains"`
		Thresholds []string          `json:"thresholds"`
		Time       string            `json:"time"`
		Value      *float64          `json:"value"`
		Tags       map[string]string `json:"tags"`
	} `json:"data"`
}

func TestNDJSON(t *testing.T) {
	reg := metrics.NewRegistry()
	var out bytes.Buffer
	f, flush := NewNDJSON(&out, reg)
	reg.OnSample(f)

	const workers, each = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rtt := reg.Trend("ws_msg_rtt", true).With(metrics.Tags{"scenario": "chat", "vu": fmt.Sprint(w)})
			msgs := reg.Counter("ws_msgs_received").With(metrics.Tags{"scenario": "chat"})
			for i := range each {
				rtt.Observe(time.Duration(i) * time.Microsecond)
				msgs.Add(1)
			}
		})
	}
	wg.Wait()
	reg.Rate("checks").With(metrics.Tags{"check": "say \"hi\"\n<ok>"}).AddBool(true)
	reg.Counter("data_sent").With(nil).Add(10)
	if err := flush(); err != nil {
		t.Fatal(err)
	}

	points := map[string]int{}
	var metricLines []ndLine
	var lastCheck ndLine
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var l ndLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		switch l.Type {
		case "Metric":
			if points[l.Metric] != 0 {
				t.Errorf("Metric line for %s after its points", l.Metric)
			}
			metricLines = append(metricLines, l)
		case "Point":
			points[l.Metric]++
			if _, err := time.Parse(time.RFC3339Nano, l.Data.Time); err != nil || l.Data.Value == nil {
				t.Errorf("point %q: time %v, value %v", sc.Text(), err, l.Data.Value)
			}
			if l.Metric == "checks" {
				lastCheck = l
			}
		default:
			t.Errorf("line of type %q", l.Type)
		}
	}
	wantPoints := map[string]int{"ws_msg_rtt": workers * each, "ws_msgs_received": workers * each, "checks": 1, "data_sent": 1}
	if diff := cmp.Diff(wantPoints, points); diff != "" {
		t.Errorf("points per metric (-want +got):\n%s", diff)
	}
	type meta struct{ Name, Type, Contains string }
	var gotMeta []meta
	for _, l := range metricLines {
		if l.Metric != l.Data.Name || l.Data.Thresholds == nil {
			t.Errorf("Metric line %+v: want metric == data.name and a thresholds array", l)
		}
		gotMeta = append(gotMeta, meta{l.Data.Name, l.Data.Type, l.Data.Contains})
	}
	wantMeta := []meta{
		{"checks", "rate", "default"}, {"data_sent", "counter", "data"},
		{"ws_msg_rtt", "trend", "time"}, {"ws_msgs_received", "counter", "default"},
	}
	sortMeta := cmp.Transformer("sort", func(in []meta) map[string]meta {
		m := map[string]meta{}
		for _, x := range in {
			if _, dup := m[x.Name]; dup {
				t.Errorf("two Metric lines for %s", x.Name)
			}
			m[x.Name] = x
		}
		return m
	})
	if diff := cmp.Diff(wantMeta, gotMeta, sortMeta); diff != "" {
		t.Errorf("Metric lines (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"check": "say \"hi\"\n<ok>"}, lastCheck.Data.Tags); diff != "" {
		t.Errorf("escaped tags (-want +got):\n%s", diff)
	}
}

func TestNDJSONShape(t *testing.T) {
	reg := metrics.NewRegistry()
	var out bytes.Buffer
	f, flush := NewNDJSON(&out, reg)
	reg.Trend("ws_msg_rtt", true)
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	f("ws_msg_rtt", metrics.Tags{"scenario": "chat", "a": "\x01\u2028é"}, 1.2, at)
	f("ws_msg_rtt", nil, 3, at)
	f("unregistered", nil, 1, at)
	if err := flush(); err != nil {
		t.Fatal(err)
	}
	want := `{"type":"Metric","metric":"ws_msg_rtt","data":{"name":"ws_msg_rtt","type":"trend","contains":"time","thresholds":[],"submetrics":null}}
{"type":"Point","metric":"ws_msg_rtt","data":{"time":"2026-03-01T12:00:00.123456789Z","value":1.2,"tags":{"a":"\u0001\u2028é","scenario":"chat"}}}
{"type":"Point","metric":"ws_msg_rtt","data":{"time":"2026-03-01T12:00:00.123456789Z","value":3,"tags":{}}}
{"type":"Metric","metric":"unregistered","data":{"name":"unregistered","thresholds":[],"submetrics":null}}
{"type":"Point","metric":"unregistered","data":{"time":"2026-03-01T12:00:00.123456789Z","value":1,"tags":{}}}
`
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

func TestNDJSONFlushError(t *testing.T) {
	f, flush := NewNDJSON(errWriter{os.ErrClosed}, nil)
	f("x", nil, 1, time.Now())
	if err := flush(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("flush = %v, want os.ErrClosed", err)
	}
}

func BenchmarkNDJSON(b *testing.B) {
	var out bytes.Buffer
	f, flush := NewNDJSON(&out, nil)
	tags := metrics.Tags{"scenario": "chat", "vu": "17"}
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			f("ws_msg_rtt", tags, 1.234, now)
		}
	})
	if err := flush(); err != nil {
		b.Fatal(err)
	}
}
