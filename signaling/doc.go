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
// decoding: each packet from a publisher is read once into a pooled buffer.
// A subscriber whose selected ICE pair is UDP gets it written at once from
// the publisher's reader, since a UDP write does not wait for the peer;
// any other subscriber (ICE-TCP) gets it queued, by reference, to its
// bounded queue, and a full queue drops the packet for that subscriber
// alone and counts it. Muted participants' packets are dropped on arrival.
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
//     also writes to UDP subscribers, one writer draining its queue (used
//     by an ICE-TCP subscriber), and one RTCP reader per RTP sender and
//     receiver; all end when its PeerConnection closes or it is removed;
//   - short-lived goroutines for node messages, publications and
//     PeerConnection closes, each queue (serialQueue) holding at most one
//     at a time.
//
// Request handlers run on connection readers and wait for the actor only
// as long as a room operation takes. The packet path takes no lock: each
// publisher's subscriber list is an atomically swapped slice.
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
