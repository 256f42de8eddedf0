package realtime

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/internal/httpx"
	"github.com/partyline/partyline/realtime/wire"
)

// maxBroadcastChannels caps one /v1/server/broadcast call.
const maxBroadcastChannels = 1000

var kindPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// ServerAPI returns the routes of the server API for trusted backends,
// mounted at /v1/server. Every call needs the API key as a bearer token,
// compared in constant time; with no key configured the API answers 404.
func (n *Node) ServerAPI() http.Handler {
	r := httpx.NewRouter()
	r.Use(n.requireAPIKey)
	r.Post("/publish", n.apiPublish)
	r.Post("/broadcast", n.apiBroadcast)
	r.Post("/disconnect", n.apiDisconnect)
	r.Get("/presence", n.apiPresence)
	return r
}

func (n *Node) requireAPIKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.opts.APIKey == "" {
			httpx.NotFound(w, r)
			return
		}
		got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(n.opts.APIKey)) != 1 {
			httpx.Error(w, r, partyline.Errorf(partyline.ErrUnauthorized, "missing or wrong API key"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

type apiPublishRequest struct {
	Channel string          `json:"channel"`
	Kind    string          `json:"kind"`
	Data    json.RawMessage `json:"data"`
}

type apiPublishResult struct {
	Channel string `json:"channel,omitempty"`
	Offset  uint64 `json:"offset"`
	Epoch   string `json:"epoch"`
}

// serverPublish publishes a server message on ch: through the namespace
// owner's ServerPublish when it declares one (chat stores room and dm
// messages as from "system"), elsewhere straight into the stream.
func (n *Node) serverPublish(ctx context.Context, ch, kind string, data json.RawMessage) (Position, error) {
	_, _, entry, err := n.channel(ch)
	if err != nil {
		return Position{}, err
	}
	if entry.decl.ServerPublish != nil {
		return entry.decl.ServerPublish(ctx, ch, kind, data)
	}
	return n.Publish(ctx, ch, "", kind, "", data)
}

// checkKindData validates a server publication's kind and data and returns
// the data compacted: raw newlines inside it would split the frame.
func checkKindData(kind string, data json.RawMessage) (json.RawMessage, error) {
	if !kindPattern.MatchString(kind) {
		return nil, partyline.Errorf(partyline.ErrInvalid, "kind must match [A-Za-z0-9_.-]{1,64}")
	}
	if len(data) == 0 || string(data) == "null" {
		return nil, partyline.Errorf(partyline.ErrInvalid, "data is required")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return nil, partyline.Errorf(partyline.ErrInvalid, "data is not valid JSON")
	}
	return buf.Bytes(), nil
}

func (n *Node) apiPublish(w http.ResponseWriter, r *http.Request) {
	var req apiPublishRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		httpx.Error(w, r, err)
		return
	}
	data, err := checkKindData(req.Kind, req.Data)
	if err != nil {
		httpx.Error(w, r, err)
		return
	}
	pos, err := n.serverPublish(r.Context(), req.Channel, req.Kind, data)
	if err != nil {
		httpx.Error(w, r, err)
		return
	}
	httpx.JSON(w, r, http.StatusOK, apiPublishResult{Offset: pos.Offset, Epoch: pos.Epoch})
}

type apiBroadcastRequest struct {
	Channels []string        `json:"channels"`
	Kind     string          `json:"kind"`
	Data     json.RawMessage `json:"data"`
}

type apiBroadcastResult struct {
	Channel string `json:"channel"`
	Offset  uint64 `json:"offset,omitempty"`
	Epoch   string `json:"epoch,omitempty"`
	Error   string `json:"error,omitempty"`
}

func (n *Node) apiBroadcast(w http.ResponseWriter, r *http.Request) {
	var req apiBroadcastRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		httpx.Error(w, r, err)
		return
	}
	if len(req.Channels) == 0 || len(req.Channels) > maxBroadcastChannels {
		httpx.Error(w, r, partyline.Errorf(partyline.ErrInvalid, "channels must list 1 to %d channels", maxBroadcastChannels))
		return
	}
	data, err := checkKindData(req.Kind, req.Data)
	if err != nil {
		httpx.Error(w, r, err)
		return
	}
	req.Data = data
	for _, ch := range req.Channels {
		if _, _, _, err := n.channel(ch); err != nil {
			httpx.Error(w, r, partyline.Errorf(partyline.ErrInvalid, "channel %q: %v", truncate(ch, 140), err))
			return
		}
	}
	results := make([]apiBroadcastResult, len(req.Channels))
	for i, ch := range req.Channels {
		results[i].Channel = ch
		pos, err := n.serverPublish(r.Context(), ch, req.Kind, req.Data)
		if err != nil {
			results[i].Error = ErrorCode(err)
			continue
		}
		results[i].Offset, results[i].Epoch = pos.Offset, pos.Epoch
	}
	httpx.JSON(w, r, http.StatusOK, map[string]any{"results": results})
}

type apiDisconnectRequest struct {
	User   string `json:"user"`
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

// validServerClose reports whether a server API caller may close with code.
func validServerClose(code int) bool {
	switch code {
	case wire.CloseNormal, wire.CloseGoingAway, wire.CloseServiceRestart, wire.CloseTryAgainLater:
		return true
	}
	return code >= 4000 && code <= 4999
}

func (n *Node) apiDisconnect(w http.ResponseWriter, r *http.Request) {
	var req apiDisconnectRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		httpx.Error(w, r, err)
		return
	}
	if !wire.ValidID(req.User) {
		httpx.Error(w, r, partyline.Errorf(partyline.ErrInvalid, "user must match [A-Za-z0-9_-]{1,64}"))
		return
	}
	if req.Code == 0 {
		req.Code = wire.CloseUnauthorized
	}
	if !validServerClose(req.Code) {
		httpx.Error(w, r, partyline.Errorf(partyline.ErrInvalid, "code must be 1000, 1001, 1012, 1013 or 4000-4999"))
		return
	}
	if len(req.Reason) > 120 {
		httpx.Error(w, r, partyline.Errorf(partyline.ErrInvalid, "reason is at most 120 bytes"))
		return
	}
	closed, err := n.DisconnectEverywhere(r.Context(), req.User, req.Code, req.Reason)
	if err != nil {
		httpx.Error(w, r, partyline.Errorf(partyline.ErrUnavailable, "disconnect: %v", err))
		return
	}
	httpx.JSON(w, r, http.StatusOK, map[string]int{"closed": closed})
}

func (n *Node) apiPresence(w http.ResponseWriter, r *http.Request) {
	ch := r.URL.Query().Get("channel")
	if _, _, _, err := n.channel(ch); err != nil {
		httpx.Error(w, r, err)
		return
	}
	p, err := n.ChannelPresence(r.Context(), ch)
	if err != nil {
		httpx.Error(w, r, err)
		return
	}
	httpx.JSON(w, r, http.StatusOK, p)
}
