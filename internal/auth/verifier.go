package auth

import (
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/partyline/partyline"
)

const (
	// MinSecretBytes is the shortest HS256 secret NewVerifier and NewSigner
	// accept. RFC 7518 asks for 32 bytes; 16 random bytes (128 bits) still
	// resist brute force, and the lower bar lets an existing platform secret
	// work. The dev secret is always 32 bytes.
	MinSecretBytes = 16

	// minRSABits is the smallest RSA modulus accepted for RS256.
	minRSABits = 2048

	defaultLeeway        = 30 * time.Second
	defaultMaxTokenBytes = 8192
)

// Options configures a Verifier. Exactly one of Secret and PublicKeyPEM must
// be set; it decides the one algorithm the Verifier accepts.
type Options struct {
	// Secret is the HS256 shared secret, at least MinSecretBytes long. Empty
	// means the Verifier uses PublicKeyPEM.
	Secret []byte

	// PublicKeyPEM holds the issuer's public key: a PKIX "PUBLIC KEY" block,
	// a PKCS #1 "RSA PUBLIC KEY" block, or an X.509 "CERTIFICATE" block (the
	// first one is used). An RSA key (at least 2048 bits) pins RS256, and an
	// Ed25519 key pins EdDSA. Empty means the Verifier uses Secret.
	PublicKeyPEM []byte

	// Issuer is the required iss claim. Empty means iss is not checked.
	Issuer string

	// Audience must be one of the token's aud values. Empty means aud is not
	// checked.
	Audience string

	// Leeway is the clock skew allowed when checking exp, nbf and iat. Zero
	// means 30 seconds: enough for servers whose clocks drift a little, while
	// keeping an expired token usable for only half a minute longer. Negative
	// is an error.
	Leeway time.Duration

	// MaxTokenBytes is the longest token accepted; longer tokens are rejected
	// before any parsing. Zero means 8192. Negative is an error.
	MaxTokenBytes int

	// Now returns the current time for the exp, nbf and iat checks. Nil means
	// time.Now. Tests set it.
	Now func() time.Time
}

// Claims is what partyline takes from a verified token.
type Claims struct {
	// UserID is the sub claim, a valid user id.
	UserID string
	// ExpiresAt is the exp claim.
	ExpiresAt time.Time
	// IssuedAt is the iat claim, or the zero time when the token has none.
	IssuedAt time.Time
}

// Verifier checks JWTs against one key and one pinned algorithm. It is
// immutable and safe for concurrent use.
type Verifier struct {
	alg      string
	key      any // []byte, *rsa.PublicKey or ed25519.PublicKey, matching alg
	issuer   string
	audience string
	maxBytes int
	parser   *jwt.Parser
}

// NewVerifier validates opts, fills in the defaults and returns a Verifier.
// Errors wrap partyline.ErrInvalid.
func NewVerifier(opts Options) (*Verifier, error) {
	v := &Verifier{
		issuer:   opts.Issuer,
		audience: opts.Audience,
		maxBytes: opts.MaxTokenBytes,
	}
	switch {
	case len(opts.Secret) > 0 && len(opts.PublicKeyPEM) > 0:
		return nil, fmt.Errorf("auth: both a secret and a public key are set, want one: %w", partyline.ErrInvalid)
	case len(opts.Secret) > 0:
		if len(opts.Secret) < MinSecretBytes {
			return nil, fmt.Errorf("auth: secret is %d bytes, want at least %d: %w", len(opts.Secret), MinSecretBytes, partyline.ErrInvalid)
		}
		v.alg = jwt.SigningMethodHS256.Alg()
		v.key = append([]byte(nil), opts.Secret...)
	case len(opts.PublicKeyPEM) > 0:
		alg, key, err := parsePublicKey(opts.PublicKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("auth: public key: %w", err)
		}
		v.alg, v.key = alg, key
	default:
		return nil, fmt.Errorf("auth: neither a secret nor a public key is set: %w", partyline.ErrInvalid)
	}

	leeway := opts.Leeway
	switch {
	case leeway < 0:
		return nil, fmt.Errorf("auth: negative leeway %s: %w", leeway, partyline.ErrInvalid)
	case leeway == 0:
		leeway = defaultLeeway
	}
	switch {
	case v.maxBytes < 0:
		return nil, fmt.Errorf("auth: negative max token bytes %d: %w", v.maxBytes, partyline.ErrInvalid)
	case v.maxBytes == 0:
		v.maxBytes = defaultMaxTokenBytes
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}

	popts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{v.alg}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
	}
	if v.issuer != "" {
		popts = append(popts, jwt.WithIssuer(v.issuer))
	}
	if v.audience != "" {
		popts = append(popts, jwt.WithAudience(v.audience))
	}
	// The parser's validator is built here and only read afterwards, so one
	// parser serves concurrent Verify calls.
	v.parser = jwt.NewParser(popts...)
	return v, nil
}

// Algorithm returns the one JWT algorithm v accepts: HS256, RS256 or EdDSA.
func (v *Verifier) Algorithm() string { return v.alg }

// Verify checks token and returns its claims. Every failure wraps
// partyline.ErrUnauthorized, with a short reason that never includes the
// token.
func (v *Verifier) Verify(token string) (Claims, error) {
	if token == "" {
		return Claims{}, unauthorized("empty token")
	}
	if len(token) > v.maxBytes {
		return Claims{}, unauthorized(fmt.Sprintf("token longer than %d bytes", v.maxBytes))
	}

	var rc jwt.RegisteredClaims
	parsed, err := v.parser.ParseWithClaims(token, &rc, v.keyFunc)
	if err != nil {
		return Claims{}, unauthorized(v.reason(parsed, &rc, err))
	}
	if !validUserID(rc.Subject) {
		return Claims{}, unauthorized("sub claim is not a valid user id")
	}

	c := Claims{UserID: rc.Subject, ExpiresAt: rc.ExpiresAt.Time}
	if rc.IssuedAt != nil {
		c.IssuedAt = rc.IssuedAt.Time
	}
	return c, nil
}

// keyFunc hands the pinned key to the parser. The parser has already refused
// any other algorithm; checking again keeps the key from ever reaching a
// method it was not meant for.
func (v *Verifier) keyFunc(t *jwt.Token) (any, error) {
	if t.Method == nil || t.Method.Alg() != v.alg {
		return nil, errors.New("unexpected algorithm")
	}
	return v.key, nil
}

// reason names why a token failed, from the library's error kinds and the
// claims decoded so far. It only uses fixed strings, so nothing from the
// token reaches logs.
func (v *Verifier) reason(t *jwt.Token, rc *jwt.RegisteredClaims, err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case t != nil && (t.Method == nil || t.Method.Alg() != v.alg):
		return "algorithm not accepted, want " + v.alg
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad signature"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "token unverifiable"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		switch {
		case rc.ExpiresAt == nil:
			return "missing exp claim"
		case v.issuer != "" && rc.Issuer == "":
			return "missing iss claim"
		default:
			return "missing aud claim"
		}
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token not valid yet (nbf)"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token issued in the future (iat)"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	default:
		return "invalid claims"
	}
}

func unauthorized(reason string) error {
	return fmt.Errorf("auth: %s: %w", reason, partyline.ErrUnauthorized)
}

// parsePublicKey reads the first public key or certificate block of data and
// returns the algorithm it pins with the key in the form the jwt library
// verifies with.
func parsePublicKey(data []byte) (alg string, key any, err error) {
	var pub any
	for rest := data; pub == nil; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return "", nil, fmt.Errorf("no PUBLIC KEY or CERTIFICATE PEM block: %w", partyline.ErrInvalid)
		}
		switch block.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				pub = cert.PublicKey
			}
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY":
			return "", nil, fmt.Errorf("PEM holds a private key, want the public key: %w", partyline.ErrInvalid)
		default:
			continue
		}
		if err != nil {
			return "", nil, fmt.Errorf("parse %s block: %w: %w", block.Type, err, partyline.ErrInvalid)
		}
	}

	switch k := pub.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < minRSABits {
			return "", nil, fmt.Errorf("RSA key is %d bits, want at least %d: %w", bits, minRSABits, partyline.ErrInvalid)
		}
		return jwt.SigningMethodRS256.Alg(), k, nil
	case ed25519.PublicKey:
		return jwt.SigningMethodEdDSA.Alg(), k, nil
	default:
		return "", nil, fmt.Errorf("key type %T not supported, want RSA or Ed25519: %w", pub, partyline.ErrInvalid)
	}
}

// validUserID reports whether id matches ^[A-Za-z0-9_-]{1,64}$, the rule for
// user ids everywhere in partyline.
func validUserID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
