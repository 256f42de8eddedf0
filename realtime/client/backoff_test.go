package client

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	const base, limit = 500 * time.Millisecond, 20 * time.Second
	ceiling := func(n int) time.Duration {
		d := base
		for range n {
			d *= 2
			if d >= limit {
				return limit
			}
		}
		return d
	}

	t.Run("window", func(t *testing.T) {
		for n := range 70 {
			var asked int64
			top := func(k int64) int64 { asked = k; return k - 1 }
			got := backoff(n, base, limit, top)
			if want := ceiling(n); got != want {
				t.Errorf("backoff(%d) at the top of the window = %v, want %v", n, got, want)
			}
			if want := int64(ceiling(n)) + 1; asked != want {
				t.Errorf("backoff(%d) drew from [0, %d), want [0, %d)", n, asked, want)
			}
			if got := backoff(n, base, limit, func(int64) int64 { return 0 }); got != 0 {
				t.Errorf("backoff(%d) at the bottom of the window = %v, want 0", n, got)
			}
		}
	})

	t.Run("random draws stay in the window", func(t *testing.T) {
		for n := range 12 {
			low, high := time.Duration(1<<62), time.Duration(0)
			for range 500 {
				got := backoff(n, base, limit, nil)
				if got < 0 || got > ceiling(n) {
					t.Fatalf("backoff(%d) = %v, outside [0, %v]", n, got, ceiling(n))
				}
				low, high = min(low, got), max(high, got)
			}
			// Full jitter uses the whole window, not just its upper half.
			if low > ceiling(n)/4 || high < ceiling(n)*3/4 {
				t.Errorf("backoff(%d) over 500 draws spans [%v, %v] of [0, %v]", n, low, high, ceiling(n))
			}
		}
	})

	t.Run("cap below base", func(t *testing.T) {
		got := backoff(3, time.Second, 100*time.Millisecond, func(k int64) int64 { return k - 1 })
		if got != 100*time.Millisecond {
			t.Errorf("got %v, want the cap", got)
		}
	})
}
