package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/partyline/partyline/internal/auth"
	"github.com/partyline/partyline/loadtest/metrics"
)

// Env is what a scenario gets to work with.
type Env struct {
	// Scenario is the scenario's name in the test; Tags tag its metrics.
	Scenario string
	Tags     metrics.Tags
	// Target is the server's base URL (http or https).
	Target *url.URL
	// Tokens hands out JWTs for synthetic users.
	Tokens TokenSource
	// APIKey is the server API key, for scenarios that publish
	// server-side; "" when not given.
	APIKey string
	// UserPrefix starts every synthetic user id, so that agents of one
	// distributed run never share users.
	UserPrefix string
	// Metrics receives the scenario's samples.
	Metrics *metrics.Registry
	// HTTP is the client for REST and WebSocket handshakes; its dialer
	// spreads connections over the local addresses.
	HTTP *http.Client
	// Segment is this process's share of a distributed run (0 alone):
	// work that must happen once per test, such as one publisher, runs on
	// segment 0.
	Segment int
	// Loopback is true when the target is a loopback address: voice
	// participants then keep ICE on loopback.
	Loopback bool
	Logger   *slog.Logger
}

// WSURL is the gateway's WebSocket endpoint.
func (e *Env) WSURL() string {
	u := *e.Target
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	u.Path = "/v1/ws"
	return u.String()
}

// URL returns the target's URL for path.
func (e *Env) URL(path string) string { return strings.TrimRight(e.Target.String(), "/") + path }

// User returns the id of synthetic user i of this scenario.
func (e *Env) User(i int64) string { return fmt.Sprintf("%s%s_%d", e.UserPrefix, e.Scenario, i) }

// TokenSource returns a JWT for a user.
type TokenSource interface {
	Token(ctx context.Context, user string) (string, error)
}

// SecretTokens mints HS256 tokens with the server's secret.
type SecretTokens struct{ s *auth.Signer }

// NewSecretTokens returns a TokenSource signing with secret.
func NewSecretTokens(secret string) (*SecretTokens, error) {
	s, err := auth.NewSigner([]byte(secret), "", "")
	if err != nil {
		return nil, err
	}
	return &SecretTokens{s}, nil
}

// Token signs a token for user, valid for a day.
func (t *SecretTokens) Token(_ context.Context, user string) (string, error) {
	tok, _, err := t.s.Sign(user, 24*time.Hour)
	return tok, err
}

// DevTokens asks a dev-mode server's token endpoint, caching each user's
// token.
type DevTokens struct {
	URL    string // such as http://127.0.0.1:8080/v1/dev/token
	Client *http.Client

	mu    sync.Mutex
	cache map[string]string
}

// Token returns user's token from the endpoint.
func (t *DevTokens) Token(ctx context.Context, user string) (string, error) {
	t.mu.Lock()
	tok, ok := t.cache[user]
	t.mu.Unlock()
	if ok {
		return tok, nil
	}
	body, _ := json.Marshal(map[string]string{"user": user})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	c := t.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("token for %s: %w", user, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token for %s: %s: %s", user, resp.Status, bytes.TrimSpace(raw))
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.Token == "" {
		return "", fmt.Errorf("token for %s: no token in %s", user, raw)
	}
	t.mu.Lock()
	if t.cache == nil {
		t.cache = map[string]string{}
	}
	t.cache[user] = out.Token
	t.mu.Unlock()
	return out.Token, nil
}

// ParseLocalIPs reads --local-ips: a comma-separated list of addresses,
// ranges (127.0.0.2-127.0.0.50) and CIDR blocks (127.0.1.0/24; network and
// broadcast addresses of IPv4 blocks are left out). At most 65,536
// addresses.
func ParseLocalIPs(s string) ([]netip.Addr, error) {
	const limit = 1 << 16
	var out []netip.Addr
	add := func(a netip.Addr) error {
		if len(out) >= limit {
			return configErrorf("--local-ips: more than %d addresses", limit)
		}
		out = append(out, a)
		return nil
	}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		switch {
		case part == "":
			continue
		case strings.Contains(part, "/"):
			p, err := netip.ParsePrefix(part)
			if err != nil {
				return nil, configErrorf("--local-ips %q: %w", part, err)
			}
			p = p.Masked()
			first, last := p.Addr(), lastAddr(p)
			if first.Is4() && p.Bits() < 31 {
				first, last = first.Next(), last.Prev()
			}
			for a := first; a.IsValid() && a.Compare(last) <= 0; a = a.Next() {
				if err := add(a); err != nil {
					return nil, err
				}
			}
		case strings.Contains(part, "-"):
			lo, hi, _ := strings.Cut(part, "-")
			a, err1 := netip.ParseAddr(strings.TrimSpace(lo))
			b, err2 := netip.ParseAddr(strings.TrimSpace(hi))
			if err1 != nil || err2 != nil || a.Is4() != b.Is4() || a.Compare(b) > 0 {
				return nil, configErrorf("--local-ips %q: want first-last of one family, in order", part)
			}
			for x := a; x.IsValid() && x.Compare(b) <= 0; x = x.Next() {
				if err := add(x); err != nil {
					return nil, err
				}
			}
		default:
			a, err := netip.ParseAddr(part)
			if err != nil {
				return nil, configErrorf("--local-ips %q: %w", part, err)
			}
			if err := add(a); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 7; j >= 0; j-- {
			if i*8+(7-j) >= bits {
				b[i] |= 1 << j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// SpreadDialer dials from the local addresses in turn, so that a host can
// open more connections to one server port than one source address has
// ephemeral ports (about 28,000 with Linux's default range).
type SpreadDialer struct {
	addrs []netip.Addr
	next  atomic.Uint64
	base  net.Dialer
}

// NewSpreadDialer returns a dialer over addrs; with none, it dials as
// net.Dialer does.
func NewSpreadDialer(addrs []netip.Addr, timeout time.Duration) *SpreadDialer {
	return &SpreadDialer{addrs: addrs, base: net.Dialer{Timeout: timeout, KeepAlive: -1}}
}

// DialContext dials network addr from the next local address.
func (d *SpreadDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if len(d.addrs) == 0 {
		return d.base.DialContext(ctx, network, addr)
	}
	dl := d.base
	local := d.addrs[d.next.Add(1)%uint64(len(d.addrs))]
	dl.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
	return dl.DialContext(ctx, network, addr)
}

// NewHTTPClient returns the client of a run: connections come from the
// dialer, and a pool big enough for many VUs of REST traffic.
func NewHTTPClient(d *SpreadDialer) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         d.DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
	}
}

// isLoopbackHost reports whether host (a name or address) is loopback.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
