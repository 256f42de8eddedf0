package threshold

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/partyline/partyline/loadtest/metrics"
)

// Method is an aggregation method.
type Method int

// Aggregation methods.
const (
	Avg Method = iota + 1
	Min
	Max
	Med
	Percentile
	Count
	RateOf // "rate": a counter's per second, a rate's ratio
	Value
)

var methodNames = map[Method]string{
	Avg: "avg", Min: "min", Max: "max", Med: "med", Percentile: "p",
	Count: "count", RateOf: "rate", Value: "value",
}

// validFor lists the methods each metric type allows.
var validFor = map[metrics.Type][]Method{
	metrics.Trend:   {Avg, Min, Max, Med, Percentile},
	metrics.Counter: {Count, RateOf},
	metrics.Rate:    {RateOf},
	metrics.Gauge:   {Value, Min, Max},
}

// Aggregation is what an expression compares: a method and, for
// Percentile, the percentile P (0 to 100).
type Aggregation struct {
	Method Method
	P      float64
}

// String returns the aggregation as written in k6's grammar: "p(99.9)",
// "avg", "rate".
func (a Aggregation) String() string {
	if a.Method == Percentile {
		return "p(" + strconv.FormatFloat(a.P, 'f', -1, 64) + ")"
	}
	return methodNames[a.Method]
}

// ValidFor reports whether a metric of type t has the aggregation.
func (a Aggregation) ValidFor(t metrics.Type) bool {
	for _, m := range validFor[t] {
		if m == a.Method {
			return true
		}
	}
	return false
}

// Of returns the aggregation's value in st. It does not check ValidFor.
func (a Aggregation) Of(st metrics.Stats) float64 {
	switch a.Method {
	case Avg:
		return st.Avg
	case Min:
		return st.Min
	case Max:
		return st.Max
	case Med:
		return st.Med
	case Percentile:
		return st.Percentile(a.P)
	case Count:
		return st.Count
	case RateOf:
		if st.Type == metrics.Counter {
			return st.PerSecond
		}
		return st.Rate
	case Value:
		return st.Value
	}
	return math.NaN()
}

// Op is a comparison operator.
type Op int

// Operators. === is parsed as Equal.
const (
	Less Op = iota + 1
	LessEqual
	Greater
	GreaterEqual
	Equal
	NotEqual
)

func (o Op) String() string {
	switch o {
	case Less:
		return "<"
	case LessEqual:
		return "<="
	case Greater:
		return ">"
	case GreaterEqual:
		return ">="
	case Equal:
		return "=="
	case NotEqual:
		return "!="
	}
	return "?"
}

// Compare reports whether "a op b" holds.
func (o Op) Compare(a, b float64) bool {
	switch o {
	case Less:
		return a < b
	case LessEqual:
		return a <= b
	case Greater:
		return a > b
	case GreaterEqual:
		return a >= b
	case Equal:
		return a == b
	case NotEqual:
		return a != b
	}
	return false
}

// Expr is a parsed expression such as "p(95) < 200".
type Expr struct {
	Agg   Aggregation
	Op    Op
	Value float64
}

// String returns the expression in canonical form, without spaces.
func (e Expr) String() string {
	return e.Agg.String() + e.Op.String() + strconv.FormatFloat(e.Value, 'f', -1, 64)
}

// operators are tried longest first, so "<=" is not read as "<".
var operators = []struct {
	s  string
	op Op
}{
	{"===", Equal}, {"==", Equal}, {"!=", NotEqual},
	{"<=", LessEqual}, {">=", GreaterEqual}, {"<", Less}, {">", Greater},
}

var (
	numberRE     = regexp.MustCompile(`^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$`)
	percentileRE = regexp.MustCompile(`^p\s*\(\s*([^)]*?)\s*\)$`)
)

// ParseExpr parses an expression such as "p(95)<200" or "rate > 0.99".
func ParseExpr(s string) (Expr, error) {
	i := strings.IndexAny(s, "<>=!")
	if i < 0 {
		return Expr{}, fmt.Errorf("%q: no operator (one of < <= > >= == === !=): %w", s, ErrSyntax)
	}
	var e Expr
	rest := s[i:]
	for _, o := range operators {
		if strings.HasPrefix(rest, o.s) {
			e.Op = o.op
			rest = rest[len(o.s):]
			break
		}
	}
	if e.Op == 0 {
		return Expr{}, fmt.Errorf("%q: bad operator at %q: %w", s, rest, ErrSyntax)
	}
	agg, err := parseAggregation(strings.TrimSpace(s[:i]))
	if err != nil {
		return Expr{}, fmt.Errorf("%q: %w", s, err)
	}
	e.Agg = agg
	num := strings.TrimSpace(rest)
	if num == "" {
		return Expr{}, fmt.Errorf("%q: no value after the operator: %w", s, ErrSyntax)
	}
	if !numberRE.MatchString(num) {
		return Expr{}, fmt.Errorf("%q: value %q is not a number: %w", s, num, ErrSyntax)
	}
	e.Value, err = strconv.ParseFloat(num, 64)
	if err != nil {
		return Expr{}, fmt.Errorf("%q: value %q: %w", s, num, ErrSyntax)
	}
	return e, nil
}

func parseAggregation(s string) (Aggregation, error) {
	if s == "" {
		return Aggregation{}, fmt.Errorf("no aggregation method before the operator: %w", ErrSyntax)
	}
	if m := percentileRE.FindStringSubmatch(s); m != nil {
		if !numberRE.MatchString(m[1]) {
			return Aggregation{}, fmt.Errorf("percentile %q is not a number: %w", m[1], ErrSyntax)
		}
		p, err := strconv.ParseFloat(m[1], 64)
		if err != nil || p < 0 || p > 100 {
			return Aggregation{}, fmt.Errorf("percentile %q is not between 0 and 100: %w", m[1], ErrSyntax)
		}
		return Aggregation{Method: Percentile, P: p}, nil
	}
	for m, name := range methodNames {
		if m != Percentile && name == s {
			return Aggregation{Method: m}, nil
		}
	}
	return Aggregation{}, fmt.Errorf("unknown aggregation method %q (want avg, min, max, med, p(N), count, rate or value): %w", s, ErrSyntax)
}

// ParseKey splits a threshold key such as ws_fanout_latency{scenario:chat}
// into the metric name and the tag filter (nil without braces).
func ParseKey(key string) (string, metrics.Tags, error) {
	k := strings.TrimSpace(key)
	open := strings.IndexByte(k, '{')
	if open < 0 {
		if k == "" || strings.ContainsAny(k, "} \t\n") {
			return "", nil, fmt.Errorf("metric key %q: bad metric name: %w", key, ErrSyntax)
		}
		return k, nil, nil
	}
	name := strings.TrimSpace(k[:open])
	if name == "" || strings.ContainsAny(name, "} \t\n") {
		return "", nil, fmt.Errorf("metric key %q: bad metric name: %w", key, ErrSyntax)
	}
	if !strings.HasSuffix(k, "}") {
		return "", nil, fmt.Errorf("metric key %q: tag filter does not end with }: %w", key, ErrSyntax)
	}
	tags, err := parseTags(k[open+1 : len(k)-1])
	if err != nil {
		return "", nil, fmt.Errorf("metric key %q: %w", key, err)
	}
	return name, tags, nil
}

// parseTags parses the inside of a tag filter: tag:value pairs separated
// by commas, values bare or quoted.
func parseTags(s string) (metrics.Tags, error) {
	tags := metrics.Tags{}
	rest := s
	for {
		colon := strings.IndexByte(rest, ':')
		if colon < 0 {
			return nil, fmt.Errorf("tag filter {%s}: want tag:value: %w", s, ErrSyntax)
		}
		k := strings.TrimSpace(rest[:colon])
		if k == "" || strings.ContainsAny(k, ",{}\"'") {
			return nil, fmt.Errorf("tag filter {%s}: bad tag name %q: %w", s, k, ErrSyntax)
		}
		rest = strings.TrimLeft(rest[colon+1:], " \t")
		var v string
		if rest != "" && (rest[0] == '"' || rest[0] == '\'') {
			end := strings.IndexByte(rest[1:], rest[0])
			if end < 0 {
				return nil, fmt.Errorf("tag filter {%s}: unterminated quote: %w", s, ErrSyntax)
			}
			v, rest = rest[1:end+1], strings.TrimLeft(rest[end+2:], " \t")
			if rest != "" && rest[0] != ',' {
				return nil, fmt.Errorf("tag filter {%s}: junk after quoted value of %s: %w", s, k, ErrSyntax)
			}
		} else {
			end := strings.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			v, rest = strings.TrimSpace(rest[:end]), rest[end:]
			if v == "" || strings.ContainsAny(v, "{}:\"'") {
				return nil, fmt.Errorf("tag filter {%s}: bad value %q for %s: %w", s, v, k, ErrSyntax)
			}
		}
		if _, dup := tags[k]; dup {
			return nil, fmt.Errorf("tag filter {%s}: tag %s given twice: %w", s, k, ErrSyntax)
		}
		tags[k] = v
		if rest == "" {
			return tags, nil
		}
		rest = rest[1:] // the comma
	}
}
