// Package signaling is partyline's voice: voice rooms, their participants,
// the selective forwarding unit (SFU) built on Pion WebRTC that carries
// their audio, server-side SDP offers over the gateway's WebSocket,
// speaking indicators, and the placement of each voice room on one media
// node of a cluster.
//
// # Who calls it
//
// cmd/partyline builds a Voice with New, passes it to realtime.New among
// Options.Extensions, calls Attach with the Node before the Node runs, and
// runs Voice.Run next to Node.Run; Run opens the UDP socket (and the
// ICE-TCP listener), logs the self-check, and returns when its context is
// done and everything it opened is closed. Cancel Run before the Node's
// Run ends, so the last voice.left publications still go out. The gateway
// calls Authorize for voice:<room> channels and routes the voice.* request
// types here.
//
// # Signaling
//
// Only the server makes offers, so offers never collide. A join answers
// ok with the participants and the ICE servers, then the server sends
// voice.offer; the client answers every offer. Offers to one participant
// never overlap: a change that comes while an offer waits for its answer
// is folded into the next offer, sent once the answer is in. Candidates
// the server gathers before its first offer went out wait for it. The ok
// reply to voice.join is queued by the handler itself (Session.Reply) so
// that the first offer can never overtake it. voice.answer and voice.ice
// are notifications: a failure is told to the client as an error message
// without id that names the request type and the room.
//
// # Media
//
// One PeerConnection per participant. Its first m-line is the client's
// microphone (recvonly at the server); every other participant's audio is
// a sendonly m-line with its own TrackLocalStaticRTP, whose stream id is
// that participant's user id. Opus is the only codec and the RFC 6464
// audio level is the only header extension. RTP is forwarded without
// decoding, each packet read once into a pooled buffer.
//
// The direct path (direct.go, and internal/srtpdirect, which says what in
// Pion it relies on) carries almost every packet. Pion runs ICE, DTLS and
// RTCP for each session, but the node learns the session's DTLS-SRTP keys
// from its own side of the handshake (the server hello it sends and the
// key log, through the RFC 5705 exporter). Once a session's keys, its
// selected UDP pair and its uplink track are known, the ICE mux's reader
// takes that publisher's RTP off the shared UDP socket, unprotects it and
// forwards it on the spot. Each subscriber on the direct path gets the
// packet protected with its own SRTP context and written to its address
// with one sendto. The first packets of a session, every packet of a
// session on ICE-TCP or whose keys are unknown (the node is not its DTLS
// server), and every packet with Options.DisableDirectPath, take Pion's
// path instead: the uplink reader gets them from Pion's track and writes
// them through Pion's tracks, at once to a UDP subscriber, or queued, by
// reference, to an ICE-TCP subscriber's bounded queue, where a full queue
// drops the packet for that subscriber alone and counts it. Muted
// participants' packets are dropped on arrival. The node sends every RTCP
// sender and receiver report itself (reports.go), counting both paths;
// Pion's report interceptors would see only its own.
//
// # Rooms across nodes
//
// A voice room lives on one media node, recorded in the Placement with a
// TTL the node refreshes from Run. The first join claims the room for the
// node that serves it; a join on another node finds the host and relays
// every voice request there over the broker (Node.SendNode). The media
// node answers through the same path, and messages for one client keep
// their order. Each gateway node remembers the voice room of each of its
// sessions (a binding); when the media node is gone from Node.Nodes or
// from the placement, the binding is dropped and voice.left with reason
// "node_lost" is published for the user, who can join again: the next
// join takes the room over for a live node.
//
// # Concurrency
//
// New starts nothing. Run starts and stops everything else:
//
//   - one actor goroutine per hosted room, which owns the room's state
//     (participants, negotiation, mute) and serves, in order, the
//     functions posted to its mailbox by request handlers, relayed
//     requests, Pion callbacks and timers; it also checks speaking every
//     SpeakingInterval, and exits when the room is empty;
//   - per participant: one uplink reader (after its track arrives), which
//     forwards what Pion's path delivers, one writer draining its queue
//     (used by an ICE-TCP subscriber), one RTCP reader per RTP sender and
//     receiver, and a timer for its reports; all end when its
//     PeerConnection closes or it is removed;
//   - the ICE mux's reader of the UDP socket, or one reader per socket
//     where several share the port (srtpdirect.Listen), which forwards
//     every packet on the direct path;
//   - short-lived goroutines for node messages, publications and
//     PeerConnection closes, each queue (serialQueue) holding at most one
//     at a time.
//
// Request handlers run on connection readers and wait for the actor only
// as long as a room operation takes. Each publisher's subscriber list is
// an atomically swapped slice, as is the direct path's table of
// publishers by address. A publisher's packets are forwarded under its
// own mutex (held only by whichever path forwards it, and by its
// reports); a subscriber's outbound SRTP context has a mutex of its own.
//
// Voice.mu guards the hosted rooms and the bindings of local sessions.
// Lock order: Voice.mu, then a room's mailbox lock, then a binding's lock.
// Voice.pmu (pending relays) and Voice.gmu (the goroutine gate) are never
// held with another lock.
//
// # Limits
//
// The m-line of a participant who left stays, inactive, in the sessions
// of those who were there; a session that outgrows about 56 KiB of SDP is
// removed with reason "renegotiate", and its client rejoins for a fresh
// one. A user is in a voice room from one connection at a time.
package signaling
