package executor

import (
	"math"
	"time"
)

// segment is a stretch of an arrival-rate schedule over which the rate, in
// iterations per second, changes linearly from r0 to r1.
type segment struct {
	d      time.Duration
	r0, r1 float64
}

// schedule yields the intended start offsets of an arrival-rate
// executor's iterations: the n-th (from 0) starts when the integral of the
// rate reaches n, so a constant rate of 2/s starts iterations at 0, 0.5 s,
// 1 s, ... and a ramp spaces them ever closer.
type schedule struct {
	segs []segment
	i    int           // current segment
	at   time.Duration // start of segment i
	n0   float64       // iterations due before segment i
}

func newSchedule(c *Config) *schedule {
	unit := c.timeUnit().Seconds()
	if c.Executor == ConstantArrivalRate {
		r := c.Rate / unit
		return &schedule{segs: []segment{{time.Duration(c.Duration), r, r}}}
	}
	var segs []segment
	from := c.StartRate / unit
	for _, st := range c.Stages {
		to := float64(st.Target) / unit
		segs = append(segs, segment{time.Duration(st.Duration), from, to})
		from = to
	}
	return &schedule{segs: segs}
}

// offset returns the start offset of iteration n, or false when the
// schedule ends before it. Calls must ask for n in increasing order.
func (s *schedule) offset(n int64) (time.Duration, bool) {
	want := float64(n)
	for s.i < len(s.segs) {
		g := s.segs[s.i]
		D := g.d.Seconds()
		if D > 0 && (g.r0 > 0 || g.r1 > 0) {
			a := (g.r1 - g.r0) / (2 * D)
			b := g.r0
			k := want - s.n0
			if k <= 0 {
				return s.at, true
			}
			disc := b*b + 4*a*k
			if disc >= 0 {
				den := b + math.Sqrt(disc)
				if den > 0 {
					tau := 2 * k / den
					if tau < D {
						return s.at + time.Duration(tau*float64(time.Second)), true
					}
				}
			}
		}
		s.n0 += (g.r0 + g.r1) / 2 * D
		s.at += g.d
		s.i++
	}
	return 0, false
}
