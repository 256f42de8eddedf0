// Package signaling is partyline's voice: voice rooms and their
// participants, the selective forwarding unit (SFU) on Pion WebRTC that
// carries their audio, server-side SDP offers over the gateway's
// WebSocket, speaking indicators, and the placement of each room on one
// media node. It owns the voice namespace and the voice.* requests, and
// registers them with the Node; it reaches the Node (publishing, node
// messages) through the small interface its constructor receives.
// docs/voice.md describes the flow, the media path and the limits.
//
// Only the server makes offers, and offers to one participant never
// overlap: a change that comes while an offer waits for its answer is
// folded into the next one. The ok reply to voice.join is queued by the
// handler itself, so the first offer can never overtake it. A room lives
// on one media node (the Placement, with a TTL the node refreshes from
// Run); other nodes relay their users' voice requests to it over node
// messages, and drop a session's binding with voice.left "node_lost" when
// the media node is gone. The direct path (internal/srtpdirect) takes a
// known publisher's RTP off the shared UDP socket and forwards it with
// keys learned from the node's own side of the DTLS handshake; everything
// else takes Pion's path, and so does everything with
// Options.DisableDirectPath.
//
// # Goroutines
//
// New starts nothing and opens no sockets. Run opens the UDP socket (and
// the ICE-TCP listener), starts the rest, and returns once its context is
// done and everything it opened is closed; cancel it before the Node's Run
// ends, so the last voice.left publications still go out. Under Run:
//
//   - one actor goroutine per hosted room, which owns the room's state
//     (participants, negotiation, mute) and runs, in order, the functions
//     posted to its mailbox by request handlers, relayed requests, Pion
//     callbacks and timers; it checks speaking every SpeakingInterval and
//     exits when the room is empty;
//   - per participant: an uplink reader for Pion's path, a writer draining
//     an ICE-TCP subscriber's queue, one RTCP reader per RTP sender and
//     receiver, and a report timer; all end when its PeerConnection closes;
//   - the ICE mux's reader of each UDP socket, which does the direct path;
//   - short-lived goroutines for node messages, publications and
//     PeerConnection closes, each serialQueue running at most one at a time.
//
// Request handlers run on connection readers and wait for the actor only
// as long as a room operation takes.
//
// # Locks
//
// Service.mu guards the hosted rooms and the bindings of local sessions.
// Lock order: Service.mu, then a room's mailbox lock, then a binding's lock.
// Service.pmu (pending relays) and Service.gmu (the goroutine gate) are never
// held with another lock. Each publisher's subscriber list, and the direct
// path's table of publishers by address, are atomically swapped slices. A
// publisher's packets are forwarded under its own fwdMu (held by whichever
// path forwards it, and by its reports); a subscriber's outbound SRTP
// context has a mutex of its own.
package signaling
