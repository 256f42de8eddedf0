package signaling

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/partyline/partyline/internal/prom"
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
	dropped := prom.CounterVec("partyline_voice_dropped_packets_total",
		"RTP packets not forwarded: to a subscriber whose queue was full (queue_full), or from a muted participant (muted).", "reason")
	direct := prom.CounterVec("partyline_voice_direct_packets_total",
		"RTP packets on the direct path: publishers' packets the node took off its UDP socket and unprotected itself (in), and forwarded packets it protected and sent itself (out, counted in forwarded too). The rest go through Pion.", "dir")
	m := &metrics{
		rooms: prom.Gauge("partyline_voice_rooms", "Voice rooms hosted on this node."),
		participants: prom.Gauge("partyline_voice_participants",
			"Voice participants whose PeerConnection is on this node."),
		forwarded: prom.Counter("partyline_voice_forwarded_packets_total",
			"RTP packets forwarded to subscribers (one per subscriber)."),
		directIn:     direct.WithLabelValues("in"),
		directOut:    direct.WithLabelValues("out"),
		droppedQueue: dropped.WithLabelValues("queue_full"),
		droppedMuted: dropped.WithLabelValues("muted"),
		renegotiations: prom.Counter("partyline_voice_renegotiations_total",
			"SDP offers sent after a participant's first one."),
		relayed: prom.Counter("partyline_voice_relayed_requests_total",
			"Voice requests relayed to the media node of another node."),
	}
	if err := prom.Register(reg, m.rooms, m.participants, m.forwarded, direct, dropped, m.renegotiations, m.relayed); err != nil {
		return nil, err
	}
	return m, nil
}
