package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline"
)

const (
	testIssuer   = "https://auth.example.test"
	testAudience = "partyline"
)

var (
	// t0 is the verifiers' clock in these tests.
	t0 = time.Date(2030, 5, 17, 12, 0, 0, 0, time.UTC)

	testSecret = []byte("0123456789abcdef0123456789abcdef")

	// RSA key generation is slow under -race, so the tests share one key.
	testRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
	testEdKey = sync.OnceValue(func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func fixedNow() time.Time { return t0 }

// pkixPEM encodes pub as a PEM "PUBLIC KEY" block.
func pkixPEM(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatalf("MarshalPKIXPublicKey: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// certPEM returns a self-signed certificate for priv as a PEM block.
func certPEM(t *testing.T, pub, priv any) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "auth.example.test"},
		NotBefore:    t0.Add(-time.Hour),
		NotAfter:     t0.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatalf("CreateCertificate: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// claims returns valid claims for alice, changed by kv pairs; a nil value
// removes the claim.
func claims(kv ...any) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub": "alice",
		"iss": testIssuer,
		"aud": testAudience,
		"iat": t0.Add(-time.Minute).Unix(),
		"exp": t0.Add(time.Hour).Unix(),
	}
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(c, k)
			continue
		}
		c[k] = kv[i+1]
	}
	return c
}

func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", m.Alg(), err)
	}
	return s
}

func b64(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// flipSignature returns tok with one bit of its signature changed.
func flipSignature(t *testing.T, tok string) string {
	t.Helper()
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil {
		t.Fatalf("decode signature: %v", err)
	}
	sig[len(sig)/2] ^= 0x01
	return tok[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}

type testVerifiers struct {
	hs, rs, ed, plain *Verifier
}

func newTestVerifiers(t *testing.T) testVerifiers {
	t.Helper()
	mk := func(o Options) *Verifier {
		t.Helper()
		o.Now = fixedNow
		v, err := NewVerifier(o)
		if err != nil {
			t.Fatalf("NewVerifier: %v", err)
		}
		return v
	}
	return testVerifiers{
		hs:    mk(Options{Secret: testSecret, Issuer: testIssuer, Audience: testAudience}),
		rs:    mk(Options{PublicKeyPEM: pkixPEM(t, &testRSAKey().PublicKey), Issuer: testIssuer, Audience: testAudience}),
		ed:    mk(Options{PublicKeyPEM: pkixPEM(t, testEdKey().Public()), Issuer: testIssuer, Audience: testAudience}),
		plain: mk(Options{Secret: testSecret}),
	}
}

func TestVerifyRejects(t *testing.T) {
	vs := newTestVerifiers(t)
	rsaPEM := pkixPEM(t, &testRSAKey().PublicKey)
	edPEM := pkixPEM(t, testEdKey().Public())
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, testSecret, c) }
	none := b64(t, map[string]string{"alg": "none", "typ": "JWT"}) + "." + b64(t, claims()) + "."

	tests := []struct {
		name       string
		v          *Verifier
		token      string
		wantReason string
	}{
		{"alg none against HS256", vs.hs, none, "algorithm not accepted"},
		{"alg none against RS256", vs.rs, none, "algorithm not accepted"},
		{"alg none against EdDSA", vs.ed, none, "algorithm not accepted"},
		{"alg none with the library's none key", vs.hs, sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims()), "algorithm not accepted"},
		{"unknown alg", vs.hs, b64(t, map[string]string{"alg": "HS999", "typ": "JWT"}) + "." + b64(t, claims()) + ".c2ln", "algorithm not accepted"},
		{"HS256 keyed with the RSA public key PEM", vs.rs, sign(t, jwt.SigningMethodHS256, rsaPEM, claims()), "algorithm not accepted"},
		{"HS256 keyed with the Ed25519 public key PEM", vs.ed, sign(t, jwt.SigningMethodHS256, edPEM, claims()), "algorithm not accepted"},
		{"RS256 against HS256", vs.hs, sign(t, jwt.SigningMethodRS256, testRSAKey(), claims()), "algorithm not accepted"},
		{"RS256 against EdDSA", vs.ed, sign(t, jwt.SigningMethodRS256, testRSAKey(), claims()), "algorithm not accepted"},
		{"EdDSA against RS256", vs.rs, sign(t, jwt.SigningMethodEdDSA, testEdKey(), claims()), "algorithm not accepted"},
		{"RS512 against RS256", vs.rs, sign(t, jwt.SigningMethodRS512, testRSAKey(), claims()), "algorithm not accepted"},
		{"expired", vs.hs, hs(claims("exp", t0.Add(-time.Hour).Unix())), "expired"},
		{"expired just past the leeway", vs.hs, hs(claims("exp", t0.Add(-31*time.Second).Unix())), "expired"},
		{"nbf in the future", vs.hs, hs(claims("nbf", t0.Add(time.Hour).Unix())), "nbf"},
		{"iat in the future", vs.hs, hs(claims("iat", t0.Add(time.Hour).Unix())), "iat"},
		{"wrong iss", vs.hs, hs(claims("iss", "https://evil.example.test")), "wrong issuer"},
		{"missing iss", vs.hs, hs(claims("iss", nil)), "missing iss"},
		{"wrong aud", vs.hs, hs(claims("aud", "other")), "wrong audience"},
		{"wrong aud array", vs.hs, hs(claims("aud", []string{"a", "b"})), "wrong audience"},
		{"missing aud", vs.hs, hs(claims("aud", nil)), "missing aud"},
		{"flipped HS256 signature", vs.hs, flipSignature(t, hs(claims())), "bad signature"},
		{"flipped RS256 signature", vs.rs, flipSignature(t, sign(t, jwt.SigningMethodRS256, testRSAKey(), claims())), "bad signature"},
		{"flipped EdDSA signature", vs.ed, flipSignature(t, sign(t, jwt.SigningMethodEdDSA, testEdKey(), claims())), "bad signature"},
		{"wrong secret", vs.hs, sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), claims()), "bad signature"},
		{"RS256 by another key", vs.rs, sign(t, jwt.SigningMethodRS256, mustRSA(t, 2048), claims()), "bad signature"},
		{"empty signature", vs.hs, strings.TrimRight(hs(claims()), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"), "bad signature"},
		{"not.a.jwt", vs.hs, "not.a.jwt", "malformed"},
		{"empty", vs.hs, "", "empty"},
		{"two parts", vs.hs, "a.b", "malformed"},
		{"four parts", vs.hs, hs(claims()) + ".x", "malformed"},
		{"padded base64", vs.hs, "eyJhbGciOiJIUzI1NiJ9==.e30.c2ln", "malformed"},
		{"over 8 KiB", vs.hs, hs(claims("pad", strings.Repeat("x", 8192))), "longer than 8192"},
		{"missing exp", vs.hs, hs(claims("exp", nil)), "missing exp"},
		{"exp not a number", vs.hs, hs(claims("exp", "tomorrow")), "malformed"},
		{"missing sub", vs.hs, hs(claims("sub", nil)), "sub"},
		{"empty sub", vs.hs, hs(claims("sub", "")), "sub"},
		{"65-char sub", vs.hs, hs(claims("sub", strings.Repeat("a", 65))), "sub"},
		{"sub with a slash", vs.hs, hs(claims("sub", "a/b")), "sub"},
		{"sub with a space", vs.hs, hs(claims("sub", "a b")), "sub"},
		{"sub not a string", vs.hs, hs(claims("sub", 42)), "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.v.Verify(tt.token)
			if !errors.Is(err, partyline.ErrUnauthorized) {
				t.Fatalf("Verify = %+v, %v; want an error wrapping ErrUnauthorized", got, err)
			}
			if !strings.Contains(err.Error(), tt.wantReason) {
				t.Errorf("Verify error %q; want it to mention %q", err, tt.wantReason)
			}
			if len(tt.token) > 8 && strings.Contains(err.Error(), tt.token) {
				t.Errorf("Verify error contains the token")
			}
			if diff := cmp.Diff(Claims{}, got); diff != "" {
				t.Errorf("Verify claims on error (-want +got):\n%s", diff)
			}
		})
	}
}

func mustRSA(t *testing.T, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatalf("rsa.GenerateKey: %v", err)
	}
	return k
}

func TestVerifyAccepts(t *testing.T) {
	vs := newTestVerifiers(t)
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, testSecret, c) }
	want := Claims{UserID: "alice", ExpiresAt: t0.Add(time.Hour), IssuedAt: t0.Add(-time.Minute)}

	tests := []struct {
		name  string
		v     *Verifier
		token string
		want  Claims
	}{
		{"HS256", vs.hs, hs(claims()), want},
		{"RS256", vs.rs, sign(t, jwt.SigningMethodRS256, testRSAKey(), claims()), want},
		{"EdDSA", vs.ed, sign(t, jwt.SigningMethodEdDSA, testEdKey(), claims()), want},
		{"aud as array", vs.hs, hs(claims("aud", []string{"other", testAudience})), want},
		{"aud as one-element array", vs.rs, sign(t, jwt.SigningMethodRS256, testRSAKey(), claims("aud", []string{testAudience})), want},
		{"no iat", vs.hs, hs(claims("iat", nil)), Claims{UserID: "alice", ExpiresAt: t0.Add(time.Hour)}},
		{"nbf in the past", vs.hs, hs(claims("nbf", t0.Add(-time.Minute).Unix())), want},
		{"nbf within the leeway", vs.hs, hs(claims("nbf", t0.Add(20*time.Second).Unix())), want},
		{"expired within the leeway", vs.hs, hs(claims("exp", t0.Add(-20*time.Second).Unix())), Claims{UserID: "alice", ExpiresAt: t0.Add(-20 * time.Second), IssuedAt: t0.Add(-time.Minute)}},
		{"iss and aud unchecked when not configured", vs.plain, hs(claims("iss", "anyone", "aud", "anything")), want},
		{"no iss or aud when not configured", vs.plain, hs(claims("iss", nil, "aud", nil)), want},
		{"64-char sub", vs.hs, hs(claims("sub", strings.Repeat("Az09_-", 10)+"abcd")), Claims{UserID: strings.Repeat("Az09_-", 10) + "abcd", ExpiresAt: t0.Add(time.Hour), IssuedAt: t0.Add(-time.Minute)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.v.Verify(tt.token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Verify claims (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerifyMaxTokenBytes(t *testing.T) {
	tok := sign(t, jwt.SigningMethodHS256, testSecret, claims())
	tests := []struct {
		name    string
		max     int
		wantErr bool
	}{
		{"exactly the limit", len(tok), false},
		{"one byte over", len(tok) - 1, true},
		{"default", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(Options{Secret: testSecret, MaxTokenBytes: tt.max, Now: fixedNow})
			if err != nil {
				t.Fatalf("NewVerifier: %v", err)
			}
			_, err = v.Verify(tok)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("Verify error = %v; want error %t", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, partyline.ErrUnauthorized) {
				t.Errorf("Verify error %v does not wrap ErrUnauthorized", err)
			}
		})
	}
}

func TestVerifyLeeway(t *testing.T) {
	tok := sign(t, jwt.SigningMethodHS256, testSecret, claims("exp", t0.Add(-2*time.Minute).Unix()))
	v, err := NewVerifier(Options{Secret: testSecret, Leeway: 5 * time.Minute, Now: fixedNow})
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	if _, err := v.Verify(tok); err != nil {
		t.Errorf("Verify with a 5m leeway of a token expired 2m ago: %v", err)
	}
}

func TestNewVerifier(t *testing.T) {
	rsaKey := testRSAKey()
	edKey := testEdKey()
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)})
	comment := []byte("# issuer key\n")

	tests := []struct {
		name    string
		opts    Options
		wantAlg string
	}{
		{"secret", Options{Secret: testSecret}, "HS256"},
		{"secret of the minimum length", Options{Secret: testSecret[:MinSecretBytes]}, "HS256"},
		{"RSA PKIX", Options{PublicKeyPEM: pkixPEM(t, &rsaKey.PublicKey)}, "RS256"},
		{"RSA PKCS1", Options{PublicKeyPEM: pkcs1}, "RS256"},
		{"RSA certificate", Options{PublicKeyPEM: certPEM(t, &rsaKey.PublicKey, rsaKey)}, "RS256"},
		{"Ed25519 PKIX", Options{PublicKeyPEM: pkixPEM(t, edKey.Public())}, "EdDSA"},
		{"Ed25519 certificate", Options{PublicKeyPEM: certPEM(t, edKey.Public(), edKey)}, "EdDSA"},
		{"text before the block", Options{PublicKeyPEM: append(comment, pkixPEM(t, edKey.Public())...)}, "EdDSA"},
		{"certificate chain uses the first", Options{PublicKeyPEM: append(certPEM(t, edKey.Public(), edKey), certPEM(t, &rsaKey.PublicKey, rsaKey)...)}, "EdDSA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(tt.opts)
			if err != nil {
				t.Fatalf("NewVerifier: %v", err)
			}
			if got := v.Algorithm(); got != tt.wantAlg {
				t.Errorf("Algorithm() = %q; want %q", got, tt.wantAlg)
			}
		})
	}
}

func TestNewVerifierErrors(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("ecdsa.GenerateKey: %v", err)
	}
	edPriv, err := x509.MarshalPKCS8PrivateKey(testEdKey())
	if err != nil {
		t.Fatalf("MarshalPKCS8PrivateKey: %v", err)
	}
	rsaPEM := pkixPEM(t, &testRSAKey().PublicKey)

	tests := []struct {
		name string
		opts Options
	}{
		{"neither", Options{}},
		{"both", Options{Secret: testSecret, PublicKeyPEM: rsaPEM}},
		{"short secret", Options{Secret: testSecret[:MinSecretBytes-1]}},
		{"not PEM", Options{PublicKeyPEM: []byte("ssh-ed25519 AAAA")}},
		{"corrupt key", Options{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")})}},
		{"private key", Options{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: edPriv})}},
		{"ECDSA key", Options{PublicKeyPEM: pkixPEM(t, &ecKey.PublicKey)}},
		{"1024-bit RSA", Options{PublicKeyPEM: pkixPEM(t, &mustRSA(t, 1024).PublicKey)}},
		{"negative leeway", Options{Secret: testSecret, Leeway: -time.Second}},
		{"negative max token bytes", Options{Secret: testSecret, MaxTokenBytes: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(tt.opts)
			if !errors.Is(err, partyline.ErrInvalid) {
				t.Fatalf("NewVerifier = %v, %v; want an error wrapping ErrInvalid", v, err)
			}
		})
	}
}

// TestVerifierCopiesSecret checks that changing the caller's slice after
// NewVerifier does not change the key.
func TestVerifierCopiesSecret(t *testing.T) {
	secret := append([]byte(nil), testSecret...)
	v, err := NewVerifier(Options{Secret: secret, Now: fixedNow})
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	secret[0] ^= 0xff
	if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, testSecret, claims())); err != nil {
		t.Errorf("Verify after the caller changed its secret: %v", err)
	}
}

func TestValidUserID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"alice", true},
		{"A-z_0-9", true},
		{strings.Repeat("x", 64), true},
		{"", false},
		{strings.Repeat("x", 65), false},
		{"a/b", false},
		{"a.b", false},
		{"é", false},
		{"a\x00", false},
	}
	for _, tt := range tests {
		if got := validUserID(tt.id); got != tt.want {
			t.Errorf("validUserID(%q) = %t; want %t", tt.id, got, tt.want)
		}
	}
}
