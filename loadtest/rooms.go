package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
)

// rooms creates the public rooms a scenario's VUs meet in: room k is
// created once, by the first VU that needs it, and the others wait for it.
type rooms struct {
	env  *Env
	http *httpMetrics
	mu   sync.Mutex
	byK  map[int64]*roomOnce
}

type roomOnce struct {
	once sync.Once
	id   string
	err  error
}

func newRooms(env *Env) *rooms {
	return &rooms{env: env, http: newHTTPMetrics(env), byK: map[int64]*roomOnce{}}
}

// get returns the id of room k, creating it as owner.
func (r *rooms) get(ctx context.Context, k int64, owner string) (string, error) {
	r.mu.Lock()
	ro := r.byK[k]
	if ro == nil {
		ro = &roomOnce{}
		r.byK[k] = ro
	}
	r.mu.Unlock()
	ro.once.Do(func() { ro.id, ro.err = r.create(ctx, fmt.Sprintf("%s room %d", r.env.Scenario, k), owner) })
	return ro.id, ro.err
}

// of returns the room of VU vu where rooms take size VUs each: VU n is
// in room (n-1)/size, which the room's first VU owns.
func (r *rooms) of(ctx context.Context, vu, size int64) (string, error) {
	k := (vu - 1) / size
	return r.get(ctx, k, r.env.User(k*size+1))
}

// create makes a public room through the REST API.
func (r *rooms) create(ctx context.Context, name, owner string) (string, error) {
	token, err := r.env.Tokens.Token(ctx, owner)
	if err != nil {
		return "", err
	}
	body, _ := json.Marshal(map[string]string{"name": name, "visibility": "public"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.env.URL("/v1/rooms"), bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, raw, err := r.http.do(r.env, req, "POST /v1/rooms")
	if err != nil {
		return "", fmt.Errorf("create room: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("create room: %s: %s", resp.Status, bytes.TrimSpace(raw))
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.ID == "" {
		return "", fmt.Errorf("create room: no id in %s", raw)
	}
	return out.ID, nil
}
