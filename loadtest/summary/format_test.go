package summary

import "testing"

func TestFmtMs(t *testing.T) {
	tests := []struct {
		ms   float64
		want string
	}{
		{0, "0s"},
		{0.85, "850µs"},
		{0.11321, "113.21µs"},
		{0.001, "1µs"},
		{0.999996, "1ms"},
		{1.23, "1.23ms"},
		{1.2345, "1.23ms"},
		{12.3, "12.3ms"},
		{999.999, "1s"},
		{2500, "2.5s"},
		{59_999, "1m0s"},
		{62_500, "1m2.5s"},
		{3_600_000, "1h0m0s"},
	}
	for _, tt := range tests {
		if got := fmtMs(tt.ms); got != tt.want {
			t.Errorf("fmtMs(%v) = %q, want %q", tt.ms, got, tt.want)
		}
	}
}

func TestFmtNum(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{0, "0"},
		{45, "45"},
		{-3, "-3"},
		{6.561094, "6.56109"},
		{0.000123456789, "0.000123457"},
		{1234567.89, "1234568"},
		{0.5, "0.5"},
		{1e20, "100000000000000000000"},
	}
	for _, tt := range tests {
		if got := fmtNum(tt.v); got != tt.want {
			t.Errorf("fmtNum(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestFmtBytes(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{0, "0 B"},
		{999, "999 B"},
		{9000, "9.0 kB"},
		{4_500_000, "4.5 MB"},
		{2e12, "2.0 TB"},
	}
	for _, tt := range tests {
		if got := fmtBytes(tt.v); got != tt.want {
			t.Errorf("fmtBytes(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestFmtPct(t *testing.T) {
	if got := fmtPct(0.99); got != "99.00%" {
		t.Errorf("fmtPct(0.99) = %q", got)
	}
}
