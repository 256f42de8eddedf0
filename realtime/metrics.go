package realtime

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/partyline/partyline/internal/prom"
)

// metrics are the gateway's Prometheus collectors, registered on the
// Registerer in Options (never the global one).
type metrics struct {
	connections    prometheus.Gauge
	subscriptions  prometheus.Gauge
	messagesIn     prometheus.Counter
	messagesOut    prometheus.Counter
	framesOut      prometheus.Counter
	fanoutLatency  prometheus.Histogram
	queueDrops     prometheus.Counter
	slowConsumers  prometheus.Counter
	closeCodes     *prometheus.CounterVec
	brokerPublish  prometheus.Histogram
	brokerErrors   prometheus.Counter
	recovery       *prometheus.CounterVec
	requestErrors  *prometheus.CounterVec
	gapFills       *prometheus.CounterVec
	closeCodeCache sync.Map // int -> prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connections: prom.Gauge("partyline_connections",
			"Open WebSocket connections on this node."),
		subscriptions: prom.Gauge("partyline_subscriptions", "Channel subscriptions on this node."),
		messagesIn:    prom.Counter("partyline_messages_in_total", "Messages received from clients."),
		messagesOut:   prom.Counter("partyline_messages_out_total", "Messages written to clients."),
		framesOut: prom.Counter("partyline_frames_out_total",
			"WebSocket frames written to clients; each packs one or more messages."),
		fanoutLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "partyline_fanout_latency_seconds",
			Help:    "Time from a publication reaching this node to its socket write.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		queueDrops: prom.Counter("partyline_queue_drops_total",
			"Messages dropped because a connection's send queue was full or closed."),
		slowConsumers: prom.Counter("partyline_slow_consumer_closes_total",
			"Connections closed with 4009 because their send queue passed its bound."),
		closeCodes: prom.CounterVec("partyline_close_codes_total",
			"Connections closed by the server, by close code.", "code"),
		brokerPublish: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "partyline_broker_publish_seconds",
			Help:    "Latency of appending a publication to the stream and handing it to the broker.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2.5, 12),
		}),
		brokerErrors: prom.Counter("partyline_broker_errors_total",
			"Failed broker or stream operations."),
		recovery: prom.CounterVec("partyline_recovery_total",
			"Subscriptions with since, by result (recovered or not).", "result"),
		gapFills: prom.CounterVec("partyline_gap_fills_total",
			"Offset gaps on the live path, by result: filled from the stream, or a gap sent to subscribers.", "result"),
		requestErrors: prom.CounterVec("partyline_request_errors_total",
			"Error replies, by code.", "code"),
	}
	if err := prom.Register(reg, m.connections, m.subscriptions, m.messagesIn, m.messagesOut,
		m.framesOut, m.fanoutLatency, m.queueDrops, m.slowConsumers, m.closeCodes, m.brokerPublish,
		m.brokerErrors, m.recovery, m.requestErrors, m.gapFills); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) closed(code int) {
	if c, ok := m.closeCodeCache.Load(code); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	c := m.closeCodes.WithLabelValues(strconv.Itoa(code))
	m.closeCodeCache.Store(code, c)
	c.Inc()
}
