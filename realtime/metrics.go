package realtime

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
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
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "partyline_connections", Help: "Open WebSocket connections on this node.",
		}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "partyline_subscriptions", Help: "Channel subscriptions on this node.",
		}),
		messagesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "partyline_messages_in_total", Help: "Messages received from clients.",
		}),
		messagesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "partyline_messages_out_total", Help: "Messages written to clients.",
		}),
		framesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "partyline_frames_out_total", Help: "WebSocket frames written to clients; each packs one or more messages.",
		}),
		fanoutLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "partyline_fanout_latency_seconds",
			Help:    "Time from a publication reaching this node to its socket write.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		queueDrops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "partyline_queue_drops_total", Help: "Messages dropped because a connection's send queue was full or closed.",
		}),
		slowConsumers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "partyline_slow_consumer_closes_total", Help: "Connections closed with 4009 because their send queue passed its bound.",
		}),
		closeCodes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "partyline_close_codes_total", Help: "Connections closed by the server, by close code.",
		}, []string{"code"}),
		brokerPublish: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "partyline_broker_publish_seconds",
			Help:    "Latency of appending a publication to the stream and handing it to the broker.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2.5, 12),
		}),
		brokerErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "partyline_broker_errors_total", Help: "Failed broker or stream operations.",
		}),
		recovery: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "partyline_recovery_total", Help: "Subscriptions with since, by result (recovered or not).",
		}, []string{"result"}),
		gapFills: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "partyline_gap_fills_total", Help: "Offset gaps on the live path, by result: filled from the stream, or a gap sent to subscribers.",
		}, []string{"result"}),
		requestErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "partyline_request_errors_total", Help: "Error replies, by code.",
		}, []string{"code"}),
	}
	for _, c := range []prometheus.Collector{m.connections, m.subscriptions, m.messagesIn, m.messagesOut,
		m.framesOut, m.fanoutLatency, m.queueDrops, m.slowConsumers, m.closeCodes, m.brokerPublish,
		m.brokerErrors, m.recovery, m.requestErrors, m.gapFills} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
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
