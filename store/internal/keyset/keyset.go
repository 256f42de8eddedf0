package keyset

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/partyline/partyline"
)

// Limits of list pages.
const (
	DefaultLimit = 50  // the page size when the caller asks for zero or less
	MaxLimit     = 200 // the largest page a listing returns
)

// Limit clamps a requested page size of a cursor listing to [1, MaxLimit],
// with DefaultLimit for zero or less.
func Limit(n int) int {
	switch {
	case n <= 0:
		return DefaultLimit
	case n > MaxLimit:
		return MaxLimit
	}
	return n
}

// HistoryLimit clamps a requested chat history size to [1, MaxLimit].
func HistoryLimit(n int) int {
	return min(max(n, 1), MaxLimit)
}

// Cursor kinds, the first byte of the decoded form. They stop a cursor of one
// shape from being accepted by a listing of the other.
const (
	kindID     = "i"
	kindTimeID = "t"
)

var enc = base64.RawURLEncoding

// EncodeID returns the cursor after the row with this id.
func EncodeID(id string) string {
	return enc.EncodeToString([]byte(kindID + ":" + id))
}

// DecodeID returns the id in a cursor made by EncodeID. Any other string is
// an error wrapping partyline.ErrInvalid.
func DecodeID(cursor string) (string, error) {
	kind, rest, err := decode(cursor)
	if err != nil {
		return "", err
	}
	if kind != kindID || rest == "" {
		return "", invalid(cursor)
	}
	return rest, nil
}

// EncodeTimeID returns the cursor after the row ordered by (at, id). at is
// kept with millisecond precision, which is what both stores keep.
func EncodeTimeID(at time.Time, id string) string {
	return enc.EncodeToString([]byte(kindTimeID + ":" + strconv.FormatInt(at.UnixMilli(), 10) + ":" + id))
}

// DecodeTimeID returns the time and id in a cursor made by EncodeTimeID. Any
// other string is an error wrapping partyline.ErrInvalid.
func DecodeTimeID(cursor string) (time.Time, string, error) {
	kind, rest, err := decode(cursor)
	if err != nil {
		return time.Time{}, "", err
	}
	ms, id, ok := strings.Cut(rest, ":")
	if kind != kindTimeID || !ok || id == "" {
		return time.Time{}, "", invalid(cursor)
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}, "", invalid(cursor)
	}
	return time.UnixMilli(n).UTC(), id, nil
}

func decode(cursor string) (kind, rest string, err error) {
	b, err := enc.DecodeString(cursor)
	if err != nil {
		return "", "", invalid(cursor)
	}
	kind, rest, ok := strings.Cut(string(b), ":")
	if !ok {
		return "", "", invalid(cursor)
	}
	return kind, rest, nil
}

func invalid(cursor string) error {
	return fmt.Errorf("invalid cursor %q: %w", cursor, partyline.ErrInvalid)
}

// Page cuts rows, fetched with a limit of limit+1, down to one page. next is
// the cursor after the last row kept, or "" when rows held no extra row and
// so this is the last page.
func Page[T any](rows []T, limit int, cursor func(T) string) (page []T, next string) {
	if len(rows) <= limit {
		return rows, ""
	}
	rows = rows[:limit]
	return rows, cursor(rows[limit-1])
}
