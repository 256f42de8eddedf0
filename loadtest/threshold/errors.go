package threshold

import "errors"

var (
	// ErrSyntax is a threshold key or expression that cannot be parsed.
	ErrSyntax = errors.New("threshold syntax")
	// ErrAggregation is an aggregation the metric's type does not have,
	// such as p(95) on a counter.
	ErrAggregation = errors.New("aggregation not valid for metric type")
	// ErrUnknownMetric is a threshold on a metric that was never
	// registered.
	ErrUnknownMetric = errors.New("unknown metric")
)
