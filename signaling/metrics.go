package signaling

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the partyline_voice_* collectors.
type metrics struct {
	rooms          prometheus.Gauge
	participants   prometheus.Gauge
	forwarded      prometheus.Counter
	directIn       prometheus.Counter
	directOut      prometheus.Counter
	droppedQueue   prometheus.Counter
	droppedMuted   prometheus.Counter
	renegotiations prometheus.Counter
	relayed        prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "partyline_voice_dropped_packets_total",
		Help: "RTP packets not forwarded: to a subscriber whose queue was full (queue_full), or from a muted participant (muted).",
	}, []string{"reason"})
	direct := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "partyline_voice_direct_packets_total",
		Help: "RTP packets on the direct path: publishers' packets the node took off its UDP socket and unprotected itself (in), and forwarded packets it protected and sent itself (out, counted in forwarded too). The rest go through Pion.",
	}, []string{"dir"})
	m := &metrics{
		rooms: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "partyline_voice_rooms",
			Help: "Voice rooms hosted on this node.",
		}),
		participants: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "partyline_voice_participants",
			Help: "Voice participants whose PeerConnection is on this node.",
		}),
		forwarded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "partyline_voice_forwarded_packets_total",
			Help: "RTP packets forwarded to subscribers (one per subscriber).",
		}),
		directIn:     direct.WithLabelValues("in"),
		directOut:    direct.WithLabelValues("out"),
		droppedQueue: dropped.WithLabelValues("queue_full"),
		droppedMuted: dropped.WithLabelValues("muted"),
		renegotiations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "partyline_voice_renegotiations_total",
			Help: "SDP offers sent after a participant's first one.",
		}),
		relayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "partyline_voice_relayed_requests_total",
			Help: "Voice requests relayed to the media node of another node.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.rooms, m.participants, m.forwarded, direct, dropped, m.renegotiations, m.relayed} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
