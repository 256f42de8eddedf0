package srtpdirect

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"hash"
	"sync"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/prf"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/srtp/v3"
)

// keys learns a PeerConnection's DTLS-SRTP keys while its handshake
// runs, so the media node can protect and unprotect RTP itself (the
// direct path) while Pion keeps ICE, DTLS and RTCP.
//
// Pion does not hand out the keys of a session, but its DTLS handshake
// reports everything they derive from (RFC 5764 section 4.2): the server
// hello it sends (the server random, the cipher suite and the SRTP
// protection profile) and the master secret with the client random (the
// key log). The node is the DTLS server of every session it offers (its
// clients answer with a=setup:active, Pion's and browsers' default); if it
// is not, or anything is missing, the session simply keeps Pion's path.
//
// The master secret never leaves this struct, and the struct lives
// exactly as long as the PeerConnection that holds the same secret.
type keys struct {
	mu      sync.Mutex
	server  []byte // server random, 32 bytes
	client  []byte // client random, 32 bytes
	master  []byte
	suite   uint16
	profile srtp.ProtectionProfile
}

var errNoDTLSKeys = errors.New("srtpdirect: the DTLS keys are not known")

// serverHello records what the node's server hello carries; it is Pion's
// DTLS server hello hook and returns the message unchanged.
func (k *keys) serverHello(m handshake.MessageServerHello) handshake.Message {
	random := m.Random.MarshalFixed()
	k.mu.Lock()
	defer k.mu.Unlock()
	k.server = append(k.server[:0], random[:]...)
	k.suite = 0
	if m.CipherSuiteID != nil {
		k.suite = *m.CipherSuiteID
	}
	k.profile = 0
	for _, e := range m.Extensions {
		if u, ok := e.(*extension.UseSRTP); ok && len(u.ProtectionProfiles) == 1 {
			k.profile = srtp.ProtectionProfile(u.ProtectionProfiles[0])
		}
	}
	return &m
}

// Write takes the DTLS key log: one line "CLIENT_RANDOM <hex> <hex>" per
// handshake (NSS key log format).
func (k *keys) Write(b []byte) (int, error) {
	f := bytes.Fields(b)
	if len(f) != 3 || string(f[0]) != "CLIENT_RANDOM" {
		return len(b), nil
	}
	client, err1 := hex.DecodeString(string(f[1]))
	master, err2 := hex.DecodeString(string(f[2]))
	if err1 != nil || err2 != nil || len(client) != 32 {
		return len(b), nil
	}
	k.mu.Lock()
	k.client, k.master = client, master
	k.mu.Unlock()
	return len(b), nil
}

// prfHash is the TLS 1.2 PRF hash of a cipher suite (RFC 5246 section 5,
// RFC 5289): SHA-384 for the *_SHA384 suites, SHA-256 for the others
// Pion's DTLS offers. An unknown suite has none.
func prfHash(suite uint16) prf.HashFunc {
	switch dtls.CipherSuiteID(suite) {
	case dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, dtls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:
		return func() hash.Hash { return sha512.New384() }
	case dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM, dtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, dtls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA:
		return sha256.New
	}
	return nil
}

// ExportKeyingMaterial is RFC 5705's exporter over what was recorded,
// with no context, as DTLS-SRTP uses it.
func (k *keys) ExportKeyingMaterial(label string, context []byte, length int) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	h := prfHash(k.suite)
	if len(context) != 0 || h == nil || len(k.master) == 0 || len(k.server) != 32 || len(k.client) != 32 {
		return nil, errNoDTLSKeys
	}
	seed := make([]byte, 0, len(label)+64)
	seed = append(append(append(seed, label...), k.client...), k.server...)
	return prf.PHash(k.master, seed, length, h)
}

// contexts derives the SRTP contexts of the session: out protects what the
// node sends, encrypting header extensions too when cryptex is set; in
// unprotects what it receives (with replay protection), with or without
// cryptex: the node's offers declare it (RFC 9335), and a client may use
// it or not.
func (k *keys) contexts(cryptex bool) (out, in *srtp.Context, err error) {
	k.mu.Lock()
	profile := k.profile
	k.mu.Unlock()
	if profile == 0 {
		return nil, nil, errNoDTLSKeys
	}
	c := srtp.Config{Profile: profile}
	// The node is the DTLS server: its keys are the server write keys.
	if err := c.ExtractSessionKeysFromDTLS(k, false); err != nil {
		return nil, nil, err
	}
	var outOpts []srtp.ContextOption
	if cryptex {
		outOpts = append(outOpts, srtp.Cryptex(srtp.CryptexModeEnabled))
	}
	out, err = srtp.CreateContext(c.Keys.LocalMasterKey, c.Keys.LocalMasterSalt, profile, outOpts...)
	if err != nil {
		return nil, nil, err
	}
	in, err = srtp.CreateContext(c.Keys.RemoteMasterKey, c.Keys.RemoteMasterSalt, profile,
		srtp.SRTPReplayProtection(64), srtp.Cryptex(srtp.CryptexModeEnabled))
	if err != nil {
		return nil, nil, err
	}
	return out, in, nil
}
