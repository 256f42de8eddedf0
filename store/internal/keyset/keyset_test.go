package keyset

import (
	"errors"
	"testing"
	"time"

	"github.com/partyline/partyline"
)

func TestLimit(t *testing.T) {
	for _, tc := range []struct{ in, want, wantHistory int }{
		{-5, DefaultLimit, 1},
		{0, DefaultLimit, 1},
		{1, 1, 1},
		{200, 200, 200},
		{201, MaxLimit, MaxLimit},
		{1 << 40, MaxLimit, MaxLimit},
	} {
		if got := Limit(tc.in); got != tc.want {
			t.Errorf("Limit(%d) = %d, want %d", tc.in, got, tc.want)
		}
		if got := HistoryLimit(tc.in); got != tc.wantHistory {
			t.Errorf("HistoryLimit(%d) = %d, want %d", tc.in, got, tc.wantHistory)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, id := range []string{"c_01HV", "with:colons:inside", "ünïcode"} {
		got, err := DecodeID(EncodeID(id))
		if err != nil || got != id {
			t.Errorf("DecodeID(EncodeID(%q)) = %q, %v", id, got, err)
		}
		at := time.Date(2025, 1, 2, 3, 4, 5, 678_900_000, time.FixedZone("x", 3600))
		gotAt, gotID, err := DecodeTimeID(EncodeTimeID(at, id))
		if err != nil || gotID != id || !gotAt.Equal(at.Truncate(time.Millisecond)) || gotAt.Location() != time.UTC {
			t.Errorf("DecodeTimeID(EncodeTimeID(%v, %q)) = %v, %q, %v", at, id, gotAt, gotID, err)
		}
	}
}

func TestInvalidCursor(t *testing.T) {
	b64 := func(s string) string { return enc.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name   string
		cursor string
		decode func(string) error
	}{
		{"id: not base64", "***", decodeID},
		{"id: no kind", b64("abc"), decodeID},
		{"id: empty id", b64("i:"), decodeID},
		{"id: time kind", EncodeTimeID(time.Now(), "x"), decodeID},
		{"time: not base64", "***", decodeTimeID},
		{"time: id kind", EncodeID("x"), decodeTimeID},
		{"time: no id", b64("t:123"), decodeTimeID},
		{"time: empty id", b64("t:123:"), decodeTimeID},
		{"time: bad millis", b64("t:12a:x"), decodeTimeID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.decode(tc.cursor); !errors.Is(err, partyline.ErrInvalid) {
				t.Errorf("decode(%q) = %v, want ErrInvalid", tc.cursor, err)
			}
		})
	}
}

func decodeID(s string) error { _, err := DecodeID(s); return err }

func decodeTimeID(s string) error { _, _, err := DecodeTimeID(s); return err }

func TestPage(t *testing.T) {
	key := func(n int) string { return EncodeID(string(rune('a' + n))) }
	for _, tc := range []struct {
		rows     []int
		limit    int
		wantLen  int
		wantNext string
	}{
		{[]int{0, 1, 2}, 3, 3, ""},
		{[]int{0, 1, 2, 3}, 3, 3, key(2)},
		{nil, 3, 0, ""},
	} {
		got, next := Page(tc.rows, tc.limit, key)
		if len(got) != tc.wantLen || next != tc.wantNext {
			t.Errorf("Page(%v, %d) = %v, %q; want %d rows, %q", tc.rows, tc.limit, got, next, tc.wantLen, tc.wantNext)
		}
	}
}
