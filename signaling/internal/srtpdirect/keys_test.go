package srtpdirect

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// TestDTLSKeysMatchTheHandshake runs real DTLS handshakes over loopback
// UDP, with the node's hooks on the server, and checks that the keys the
// node derives are the ones both ends of the handshake hold: the exporter
// output equals the library's own, and SRTP protected by either end
// unprotects at the other.
func TestDTLSKeysMatchTheHandshake(t *testing.T) {
	cases := []struct {
		suite   dtls.CipherSuiteID
		profile dtls.SRTPProtectionProfile
	}{
		{dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.SRTP_AEAD_AES_128_GCM},
		{dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, dtls.SRTP_AES128_CM_HMAC_SHA1_80},
		{dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.SRTP_AEAD_AES_256_GCM},
	}
	for _, tc := range cases {
		t.Run(tc.suite.String()+"/"+srtp.ProtectionProfile(tc.profile).String(), func(t *testing.T) {
			k := &keys{}
			server, client := dtlsPair(t, tc.suite, tc.profile, k)

			st, _ := server.ConnectionState()
			want, err := st.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", nil, 60)
			if err != nil {
				t.Fatal(err)
			}
			got, err := k.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", nil, 60)
			if err != nil {
				t.Fatalf("ExportKeyingMaterial: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("exported %x, the handshake has %x", got, want)
			}

			out, in, err := k.contexts(false)
			if err != nil {
				t.Fatalf("contexts: %v", err)
			}
			cs, _ := client.ConnectionState()
			cfg := srtp.Config{Profile: srtp.ProtectionProfile(tc.profile)}
			if err := cfg.ExtractSessionKeysFromDTLS(&cs, true); err != nil {
				t.Fatal(err)
			}
			cOut, err := srtp.CreateContext(cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt, cfg.Profile)
			if err != nil {
				t.Fatal(err)
			}
			cIn, err := srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, cfg.Profile)
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, "client to node", cOut, in)
			roundTrip(t, "node to client", out, cIn)
		})
	}
}

func roundTrip(t *testing.T, what string, enc, dec *srtp.Context) {
	t.Helper()
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: 7, Timestamp: 960, SSRC: 42}, Payload: []byte("opus frame")}
	plain, _ := pkt.Marshal()
	sealed, err := enc.EncryptRTP(nil, plain, nil)
	if err != nil {
		t.Fatalf("%s: encrypt: %v", what, err)
	}
	opened, err := dec.DecryptRTP(nil, sealed, nil)
	if err != nil {
		t.Fatalf("%s: decrypt: %v", what, err)
	}
	if !bytes.Equal(opened, plain) {
		t.Fatalf("%s: got %x, sent %x", what, opened, plain)
	}
}

// dtlsPair connects a DTLS client to a server that reports to k, as
// a media node's sessions do.
func dtlsPair(t *testing.T, suite dtls.CipherSuiteID, profile dtls.SRTPProtectionProfile, k *keys) (server, client *dtls.Conn) {
	t.Helper()
	cert, err := selfsign.GenerateSelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	a, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	shared := []dtls.Option{
		dtls.WithCertificates(cert),
		dtls.WithInsecureSkipVerify(true),
		dtls.WithCipherSuites(suite),
		dtls.WithSRTPProtectionProfiles(profile),
		dtls.WithExtendedMasterSecret(dtls.RequireExtendedMasterSecret),
	}
	serverOpts := []dtls.ServerOption{dtls.WithKeyLogWriter(k), dtls.WithServerHelloMessageHook(k.serverHello)}
	clientOpts := []dtls.ClientOption{}
	for _, o := range shared {
		serverOpts = append(serverOpts, o)
		clientOpts = append(clientOpts, o)
	}
	server, err = dtls.ServerWithOptions(a, b.LocalAddr(), serverOpts...)
	if err != nil {
		t.Fatal(err)
	}
	client, err = dtls.ClientWithOptions(b, a.LocalAddr(), clientOpts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.Close()
		_ = server.Close()
		_ = a.Close()
		_ = b.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- server.HandshakeContext(ctx) }()
	if err := client.HandshakeContext(ctx); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	return server, client
}

// TestDTLSKeysUnknown: without a full handshake on record there are no
// keys, and the session keeps Pion's path.
func TestDTLSKeysUnknown(t *testing.T) {
	k := &keys{}
	if _, _, err := k.contexts(false); err == nil {
		t.Fatal("contexts without a handshake: no error")
	}
	_, _ = k.Write([]byte("CLIENT_RANDOM zz 00\n"))
	if _, err := k.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", nil, 60); err == nil {
		t.Fatal("export without a server hello: no error")
	}
}
