package feed

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/partyline/partyline/internal/prom"
)

// metrics are the feed's Prometheus collectors. Without a Registerer they
// exist but are registered nowhere.
type metrics struct {
	queued   prometheus.Counter
	dropped  prometheus.Counter
	learned  prometheus.Counter
	saves    *prometheus.CounterVec
	trending prometheus.Gauge
	build    *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		queued: prom.Counter("partyline_feed_events_queued_total",
			"Engagement events queued for the ranking model."),
		dropped: prom.Counter("partyline_feed_events_dropped_total",
			"Engagement events dropped because the learning queue was full."),
		learned: prom.Counter("partyline_feed_model_updates_total",
			"Engagement events the ranking model learned from."),
		saves: prom.CounterVec("partyline_feed_model_saves_total",
			"Saves of the ranking model to the store, by result.", "result"),
		trending: prom.Gauge("partyline_feed_trending_clips",
			"Clips with a positive trending score at the last board rebuild."),
		build: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "partyline_feed_build_seconds",
			Help:    "Time to build the first page of a feed, by feed.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"feed"}),
	}
	if err := prom.Register(reg, m.queued, m.dropped, m.learned, m.saves, m.trending, m.build); err != nil {
		return nil, err
	}
	return m, nil
}
