// Package srtpdirect is the voice direct path: SRTP done by the media node
// itself, underneath Pion, so that a forwarded packet costs one
// unprotect, then one protect and one sendto per subscriber, without
// Pion's SRTP session, DTLS mux, ICE connection and UDP mux in between.
// signaling owns rooms, participants and forwarding; this package owns
// what depends on how Pion works inside: the keys, the SRTP contexts and
// the reading of the shared UDP port. signaling.Options.DisableDirectPath
// leaves it out, and every packet then takes Pion's own path.
//
// A Session learns one PeerConnection's DTLS-SRTP keys (keys.go), its
// selected pair and its uplink's SSRC, then publishes a Sender for the
// packets the node sends and registers a Receiver with the Conn for those
// it receives. A session whose keys stay unknown keeps Pion's path.
//
// # What it relies on
//
// Checked against pion/webrtc v4.2.26, pion/dtls v3.1.15, pion/srtp v3.1.3
// and pion/ice v4.4.9 (go.mod). Re-check each point on every upgrade of
// these; the tests of this package and signaling's voice tests (which
// count partyline_voice_direct_packets_total) fail when one breaks.
//
//   - SettingEngine.SetDTLSServerHelloMessageHook hands over the server
//     hello the node sends: its random, cipher suite and use_srtp
//     extension with the one chosen profile (RFC 5764 section 4.1.1).
//   - SettingEngine.SetDTLSKeyLogWriter writes one NSS key log line per
//     handshake, "CLIENT_RANDOM <client random> <master secret>" in hex.
//   - DTLS 1.2 with the TLS 1.2 PRF: SHA-384 for the *_SHA384 suites and
//     SHA-256 for the others Pion offers; the RFC 5705 exporter with the
//     label "EXTRACTOR-dtls_srtp" and no context, as srtp.Config's
//     ExtractSessionKeysFromDTLS asks for it. The node is the DTLS server
//     of the sessions it offers (clients answer a=setup:active).
//   - The SRTP profiles Pion negotiates (AEAD AES-256-GCM and -128-GCM,
//     AES128_CM_HMAC_SHA1_80), all of which srtp.CreateContext makes;
//     a=cryptex (RFC 9335) as Pion applies it to what it sends.
//   - Pion's ICE UDP mux (webrtc.NewICEUDPMux) reads a net.PacketConn
//     that is not a bare *net.UDPConn through its ReadFromAddrPort (or
//     ReadFrom), so Conn takes packets off the port before the mux sees
//     them; ICE consent checks and keepalives keep a pair alive although
//     its RTP never reaches Pion; a selected pair whose local candidate is
//     UDP is on the mux's port.
//   - Pion drops RTP that fails to unprotect or is replayed, and so does
//     the direct path; the node sends every RTCP report itself, so Pion's
//     report interceptors need not see the direct path's packets.
//
// # Concurrency
//
// Listen starts, with more than one socket, one reader goroutine per
// socket; Conn.Close stops them (Pion's mux closes the Conn). A reader,
// or Pion's mux reader with one socket, calls an Uplink for each packet
// it takes. The table of Receivers by address is swapped atomically and
// its writers are ordered by a mutex. A Session's mutex guards its state;
// it is taken before a Sender's, which orders the Sender's uses. An
// Uplink orders the uses of its Receiver.
package srtpdirect
