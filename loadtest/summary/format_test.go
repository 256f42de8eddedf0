package summary

import "testing"

// formatCase is a value and how a formatter should write it.
type formatCase struct {
	v    float64
	want string
}

// checkFormat checks that format, called name in messages, writes each
// case as wanted.
func checkFormat(t *testing.T, name string, format func(float64) string, cases []formatCase) {
	t.Helper()
	for _, c := range cases {
		if got := format(c.v); got != c.want {
			t.Errorf("%s(%v) = %q, want %q", name, c.v, got, c.want)
		}
	}
}

func TestFmtMs(t *testing.T) {
	checkFormat(t, "fmtMs", fmtMs, []formatCase{
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
	})
}

func TestFmtNum(t *testing.T) {
	checkFormat(t, "fmtNum", fmtNum, []formatCase{
		{0, "0"},
		{45, "45"},
		{-3, "-3"},
		{6.561094, "6.56109"},
		{0.000123456789, "0.000123457"},
		{1234567.89, "1234568"},
		{0.5, "0.5"},
		{1e20, "100000000000000000000"},
	})
}

func TestFmtBytes(t *testing.T) {
	checkFormat(t, "fmtBytes", fmtBytes, []formatCase{
		{0, "0 B"},
		{999, "999 B"},
		{9000, "9.0 kB"},
		{4_500_000, "4.5 MB"},
		{2e12, "2.0 TB"},
	})
}

func TestFmtPct(t *testing.T) {
	checkFormat(t, "fmtPct", fmtPct, []formatCase{{0.99, "99.00%"}})
}
