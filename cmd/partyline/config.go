package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/partyline/partyline/internal/server"
)

// config is every setting of `partyline serve`. Each one is a flag and a
// PARTYLINE_* variable; the flag wins over the variable.
type config struct {
	Addr             string
	AdminAddr        string
	DataDir          string
	DatabaseURL      string
	RedisURL         string
	NodeID           string
	JWTSecret        string
	JWTPublicKey     string
	JWTIssuer        string
	JWTAudience      string
	AllowedOrigins   string
	Dev              optBool
	APIKey           string
	PublishRate      float64
	MaxSubscriptions int
	MaxConnsPerUser  int
	DrainWindow      time.Duration
	VoiceUDPAddr     string
	VoicePublicIP    string
	VoiceSTUNURLs    string
	VoiceTURNURLs    string
	VoiceTURNSecret  string
	VoiceDirectPath  optBool
	MaxUploadBytes   int
	WSFastPath       optBool
}

// optBool is a boolean setting that remembers whether it was set at all, and
// accepts true/false/1/0.
type optBool struct {
	set bool
	val bool
}

func (b *optBool) String() string {
	if b == nil || !b.set {
		return ""
	}
	return strconv.FormatBool(b.val)
}

func (b *optBool) Set(s string) error {
	v, err := parseBool(s)
	if err != nil {
		return err
	}
	b.set, b.val = true, v
	return nil
}

func (b *optBool) IsBoolFlag() bool { return true }

// or returns the setting's value, or def when it was never set.
func (b optBool) or(def bool) bool {
	if b.set {
		return b.val
	}
	return def
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (use true, false, 1 or 0)", s)
}

// setting describes one configuration entry.
type setting struct {
	env, flag, usage string
	target           any
	def              string
}

func (c *config) settings() []setting {
	return []setting{
		{"PARTYLINE_ADDR", "addr", "listen address for WebSocket, REST and the demo page", &c.Addr, "127.0.0.1:8080"},
		{"PARTYLINE_ADMIN_ADDR", "admin-addr", "listen address for /metrics and pprof", &c.AdminAddr, "127.0.0.1:9090"},
		{"PARTYLINE_DATA_DIR", "data-dir", "directory for the SQLite file, blobs and the dev secret", &c.DataDir, "./data"},
		{"PARTYLINE_DATABASE_URL", "database-url", "PostgreSQL URL; empty means SQLite in the data dir", &c.DatabaseURL, ""},
		{"PARTYLINE_REDIS_URL", "redis-url", "Redis URL; empty means the in-process broker (one node only)", &c.RedisURL, ""},
		{"PARTYLINE_NODE_ID", "node-id", "this node's id; empty means the hostname plus a random suffix", &c.NodeID, ""},
		{"PARTYLINE_JWT_SECRET", "jwt-secret", "HS256 secret for verifying tokens", &c.JWTSecret, ""},
		{"PARTYLINE_JWT_PUBLIC_KEY", "jwt-public-key", "PEM file with an RSA or Ed25519 public key (RS256/EdDSA)", &c.JWTPublicKey, ""},
		{"PARTYLINE_JWT_ISSUER", "jwt-issuer", "required token issuer; empty means not checked", &c.JWTIssuer, ""},
		{"PARTYLINE_JWT_AUDIENCE", "jwt-audience", "required token audience; empty means not checked", &c.JWTAudience, ""},
		{"PARTYLINE_ALLOWED_ORIGINS", "allowed-origins", "comma-separated browser origin host patterns; empty means same-origin only", &c.AllowedOrigins, ""},
		{"PARTYLINE_DEV", "dev", "dev mode: token minting, on loopback only (default on when no JWT key is set and all listeners are loopback)", &c.Dev, ""},
		{"PARTYLINE_API_KEY", "api-key", "key for the server API (/v1/server/*); empty turns it off", &c.APIKey, ""},
		{"PARTYLINE_PUBLISH_RATE", "publish-rate", "client publishes per second per connection (burst twice that)", &c.PublishRate, "10"},
		{"PARTYLINE_MAX_SUBSCRIPTIONS", "max-subscriptions", "subscriptions per connection", &c.MaxSubscriptions, "500"},
		{"PARTYLINE_MAX_CONNS_PER_USER", "max-conns-per-user", "connections per user", &c.MaxConnsPerUser, "16"},
		{"PARTYLINE_DRAIN_WINDOW", "drain-window", "how long shutdown spreads reconnect notices over", &c.DrainWindow, "10s"},
		{"PARTYLINE_VOICE_UDP_ADDR", "voice-udp-addr", "the one ICE UDP address; empty means the host of --addr, port 7882", &c.VoiceUDPAddr, ""},
		{"PARTYLINE_VOICE_PUBLIC_IP", "voice-public-ip", "public IP to advertise for voice (NAT); empty means the bound addresses", &c.VoicePublicIP, ""},
		{"PARTYLINE_VOICE_STUN_URLS", "voice-stun-urls", "comma-separated STUN URLs handed to voice clients; empty means none", &c.VoiceSTUNURLs, ""},
		{"PARTYLINE_VOICE_TURN_URLS", "voice-turn-urls", "comma-separated TURN URLs handed to voice clients with time-limited credentials", &c.VoiceTURNURLs, ""},
		{"PARTYLINE_VOICE_TURN_SECRET", "voice-turn-secret", "secret shared with the TURN server (REST API credentials); needed with --voice-turn-urls", &c.VoiceTURNSecret, ""},
		{"PARTYLINE_VOICE_DIRECT_PATH", "voice-direct-path", "voice SRTP on the node's own direct path; false leaves every packet to Pion's path", &c.VoiceDirectPath, "true"},
		{"PARTYLINE_MAX_UPLOAD_BYTES", "max-upload-bytes", "largest clip media upload, in bytes", &c.MaxUploadBytes, "524288000"},
		{"PARTYLINE_WS_FAST_PATH", "ws-fast-path", "frame WebSocket data messages beneath the library; false writes them through it (same wire)", &c.WSFastPath, "true"},
	}
}

// registerFlags defines the named settings on fs with their built-in
// defaults, then sets each one whose environment variable is non-empty to
// that value. The flags' defaults, which -h prints, stay the built-in ones,
// so no secret from the environment shows in the help; fs.Parse then
// overwrites only what the command line sets, so the flag wins. A bad
// environment value is an error that names the variable.
func (c *config) registerFlags(fs *flag.FlagSet, getenv func(string) string, only ...string) error {
	want := map[string]bool{}
	for _, n := range only {
		want[n] = true
	}
	for _, s := range c.settings() {
		if len(only) > 0 && !want[s.flag] {
			continue
		}
		if err := assign(s.target, s.def); err != nil {
			return fmt.Errorf("--%s: built-in default: %w", s.flag, err)
		}
		usage := s.usage + " (env " + s.env + ")"
		switch t := s.target.(type) {
		case *string:
			fs.StringVar(t, s.flag, *t, usage)
		case *int:
			fs.IntVar(t, s.flag, *t, usage)
		case *float64:
			fs.Float64Var(t, s.flag, *t, usage)
		case *time.Duration:
			fs.DurationVar(t, s.flag, *t, usage)
		case *optBool:
			fs.Var(t, s.flag, usage)
		}
		if v := getenv(s.env); v != "" {
			if err := assign(s.target, v); err != nil {
				return fmt.Errorf("%s: %w", s.env, err)
			}
		}
	}
	return nil
}

func assign(target any, val string) error {
	switch t := target.(type) {
	case *string:
		*t = val
	case *int:
		n, err := strconv.Atoi(val)
		if err != nil {
			return fmt.Errorf("%q is not an integer", val)
		}
		*t = n
	case *float64:
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", val)
		}
		*t = f
	case *time.Duration:
		d, err := time.ParseDuration(val)
		if err != nil {
			return fmt.Errorf("%q is not a duration (like 10s)", val)
		}
		*t = d
	case *optBool:
		if val == "" {
			return nil
		}
		return t.Set(val)
	}
	return nil
}

// voiceDirectPath reports whether voice takes its direct SRTP path; a
// config that never read its settings has it on, as the default does.
func (c *config) voiceDirectPath() bool { return c.VoiceDirectPath.or(true) }

// validate checks the settings that flag parsing cannot.
func (c *config) validate() error {
	for name, addr := range map[string]string{"--addr": c.Addr, "--admin-addr": c.AdminAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%s %q: %w", name, addr, err)
		}
	}
	switch {
	case c.PublishRate <= 0:
		return fmt.Errorf("--publish-rate must be above 0, got %v", c.PublishRate)
	case c.MaxSubscriptions < 1:
		return fmt.Errorf("--max-subscriptions must be at least 1, got %d", c.MaxSubscriptions)
	case c.MaxConnsPerUser < 1:
		return fmt.Errorf("--max-conns-per-user must be at least 1, got %d", c.MaxConnsPerUser)
	case c.DrainWindow < 0:
		return fmt.Errorf("--drain-window must not be negative, got %v", c.DrainWindow)
	case c.MaxUploadBytes < 1:
		return fmt.Errorf("--max-upload-bytes must be at least 1, got %d", c.MaxUploadBytes)
	case c.JWTSecret != "" && c.JWTPublicKey != "":
		return fmt.Errorf("set either --jwt-secret or --jwt-public-key, not both")
	}
	if c.VoicePublicIP != "" && net.ParseIP(c.VoicePublicIP) == nil {
		return fmt.Errorf("--voice-public-ip %q is not an IP address", c.VoicePublicIP)
	}
	if c.VoiceUDPAddr == "" {
		// Port 7882 on the host of --addr; a server on a random port (tests)
		// gets a random voice port too, so that many can run at once.
		host, port, _ := net.SplitHostPort(c.Addr)
		if port != "0" {
			port = "7882"
		}
		c.VoiceUDPAddr = net.JoinHostPort(host, port)
	}
	if c.VoiceTURNURLs != "" && c.VoiceTURNSecret == "" {
		return fmt.Errorf("--voice-turn-urls needs --voice-turn-secret for the credentials")
	}
	if c.NodeID == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "node"
		}
		c.NodeID = host + "-" + randomSuffix()
	}
	return nil
}

// hasJWTKey reports whether a verification key is configured.
func (c *config) hasJWTKey() bool { return c.JWTSecret != "" || c.JWTPublicKey != "" }

// loopbackOnly reports whether every listener is on a loopback host.
func (c *config) loopbackOnly() bool {
	return isLoopback(c.Addr) && isLoopback(c.AdminAddr)
}

// devMode resolves whether dev mode is on, and refuses the unsafe
// combinations: a listener beyond loopback with no JWT key, or with dev
// mode on, since POST /v1/dev/token mints a token for anyone who reaches
// it, signed with the real secret when one is set. Dev mode is on by
// default only with no JWT key, and so only on loopback.
func (c *config) devMode() (bool, error) {
	if !c.hasJWTKey() && !c.loopbackOnly() {
		return false, fmt.Errorf("no JWT key is configured (--jwt-secret or --jwt-public-key) and a listener is not on loopback (--addr %s, --admin-addr %s): refusing to start, because anyone could mint tokens; set a JWT key or listen on 127.0.0.1", c.Addr, c.AdminAddr)
	}
	dev := !c.hasJWTKey()
	if c.Dev.set {
		if !c.Dev.val && !c.hasJWTKey() {
			return false, fmt.Errorf("dev mode is off and no JWT key is configured: set --jwt-secret or --jwt-public-key")
		}
		dev = c.Dev.val
	}
	// Checked last, on the outcome, so that no way of turning dev mode on
	// gets past it.
	if dev && !c.loopbackOnly() {
		return false, fmt.Errorf("dev mode is on and a listener is not on loopback (--addr %s, --admin-addr %s): refusing to start, because anyone who reaches the server could mint tokens with POST /v1/dev/token; turn dev mode off (--dev=false) or listen on 127.0.0.1", c.Addr, c.AdminAddr)
	}
	return dev, nil
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serverOptions maps the settings onto the server's options.
func (c *config) serverOptions(dev bool, logger *slog.Logger) (server.Options, error) {
	o := server.Options{
		NodeID:                 c.NodeID,
		DataDir:                c.DataDir,
		DatabaseURL:            c.DatabaseURL,
		RedisURL:               c.RedisURL,
		JWTSecret:              c.JWTSecret,
		JWTIssuer:              c.JWTIssuer,
		JWTAudience:            c.JWTAudience,
		Dev:                    dev,
		AllowedOrigins:         splitList(c.AllowedOrigins),
		APIKey:                 c.APIKey,
		PublishRate:            c.PublishRate,
		MaxSubscriptions:       c.MaxSubscriptions,
		MaxConnsPerUser:        c.MaxConnsPerUser,
		DrainWindow:            drainWindow(c.DrainWindow),
		MaxUploadBytes:         int64(c.MaxUploadBytes),
		DisableWSFastPath:      !c.WSFastPath.or(true),
		DisableVoiceDirectPath: !c.voiceDirectPath(),
		Voice: server.VoiceOptions{
			UDPAddr:    c.VoiceUDPAddr,
			PublicIP:   c.VoicePublicIP,
			STUNURLs:   splitList(c.VoiceSTUNURLs),
			TURNURLs:   splitList(c.VoiceTURNURLs),
			TURNSecret: c.VoiceTURNSecret,
		},
		Logger: logger,
	}
	if c.JWTPublicKey != "" {
		pem, err := os.ReadFile(c.JWTPublicKey)
		if err != nil {
			return server.Options{}, fmt.Errorf("--jwt-public-key: %w", err)
		}
		o.JWTPublicKeyPEM = pem
	}
	return o, nil
}

// drainWindow maps --drain-window to the server's option, where zero means
// the default and a negative window means none: --drain-window 0 closes
// connections at once with 1001.
func drainWindow(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// splitList reads a comma-separated setting.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
