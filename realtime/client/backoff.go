package client

import (
	"math/rand/v2"
	"time"
)

// backoff returns the wait before reconnect attempt n (0 for the first) with
// full jitter: a uniform draw from [0, min(limit, base*2^n)]. Full jitter
// spreads a crowd of clients that lost the same node over the whole window
// instead of bunching them at its edges. randN(k) must return a value in
// [0, k); nil means math/rand/v2.
func backoff(n int, base, limit time.Duration, randN func(int64) int64) time.Duration {
	if randN == nil {
		randN = rand.Int64N
	}
	if base <= 0 || limit <= 0 {
		return 0
	}
	ceil := base
	for i := 0; i < n && ceil < limit; i++ {
		ceil *= 2
	}
	if ceil > limit || ceil <= 0 {
		ceil = limit
	}
	return time.Duration(randN(int64(ceil) + 1))
}
