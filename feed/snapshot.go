package feed

import (
	"container/list"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/partyline/partyline"
)

// snapshot is a ranked list frozen at its first page, so that paging it
// never repeats or skips an item while scores move underneath.
type snapshot struct {
	id      string
	viewer  string
	kind    string // "for-you", or "trending/<game>"
	items   []ranked
	expires time.Time
}

// snapshots is a bounded LRU of snapshots with a TTL. Snapshots live in
// this process only: a cursor that reaches another node, or comes back
// after the TTL or an eviction, finds nothing, and the feed starts over.
type snapshots struct {
	mu  sync.Mutex
	max int
	ttl time.Duration
	lru *list.List               // of *snapshot, most recently used first
	m   map[string]*list.Element // by id
}

func newSnapshots(max int, ttl time.Duration) *snapshots {
	return &snapshots{max: max, ttl: ttl, lru: list.New(), m: map[string]*list.Element{}}
}

// put stores a new snapshot and returns its id.
func (s *snapshots) put(viewer, kind string, items []ranked, now time.Time) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	sn := &snapshot{id: hex.EncodeToString(b[:]), viewer: viewer, kind: kind, items: items, expires: now.Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[sn.id] = s.lru.PushFront(sn)
	for s.lru.Len() > s.max {
		old := s.lru.Remove(s.lru.Back()).(*snapshot)
		delete(s.m, old.id)
	}
	return sn.id
}

// get returns the snapshot when it exists, is not expired and belongs to
// viewer and kind.
func (s *snapshots) get(id, viewer, kind string, now time.Time) (*snapshot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[id]
	if !ok {
		return nil, false
	}
	sn := e.Value.(*snapshot)
	if now.After(sn.expires) {
		s.lru.Remove(e)
		delete(s.m, id)
		return nil, false
	}
	if sn.viewer != viewer || sn.kind != kind {
		return nil, false
	}
	s.lru.MoveToFront(e)
	return sn, true
}

// A snapshot cursor is base64url("s1:" kind ":" snapshot id ":" offset).
const snapCursorPrefix = "s1:"

func encodeSnapCursor(kind, id string, offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(snapCursorPrefix + kind + ":" + id + ":" + strconv.Itoa(offset)))
}

// decodeSnapCursor returns the snapshot id and offset of a cursor made for
// kind. Anything else is ErrInvalid.
func decodeSnapCursor(cursor, kind string) (id string, offset int, err error) {
	bad := partyline.Errorf(partyline.ErrInvalid, "invalid cursor")
	b, derr := base64.RawURLEncoding.DecodeString(cursor)
	if derr != nil {
		return "", 0, bad
	}
	rest, ok := strings.CutPrefix(string(b), snapCursorPrefix+kind+":")
	if !ok {
		return "", 0, bad
	}
	id, off, ok := strings.Cut(rest, ":")
	if !ok || len(id) != 24 {
		return "", 0, bad
	}
	offset, aerr := strconv.Atoi(off)
	if aerr != nil || offset < 0 {
		return "", 0, bad
	}
	return id, offset, nil
}
