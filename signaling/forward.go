package signaling

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// receiveMTU is the largest RTP packet read from a publisher.
const receiveMTU = 1460

// packet is a pooled RTP packet, shared read-only by the queues of every
// subscriber it goes to; the last one to finish with it returns it to the
// pool.
type packet struct {
	refs atomic.Int32
	n    int
	buf  [receiveMTU]byte
}

var packetPool = sync.Pool{New: func() any { return new(packet) }}

func (p *packet) release() {
	if p.refs.Add(-1) == 0 {
		packetPool.Put(p)
	}
}

// outPacket is a packet on its way to one subscriber, on one of its
// tracks.
type outPacket struct {
	dl *downlink
	p  *packet
}

// downlink is one publisher's audio in one subscriber's session.
type downlink struct {
	sub    *participant
	track  *webrtc.TrackLocalStaticRTP
	sender *webrtc.RTPSender
	ssrc   uint32      // the stream's SSRC in sub's session
	ready  atomic.Bool // sub answered an offer with the stream: it is bound
	stats  sendStats
}

// sentPion counts a packet Pion's track wrote.
func (dl *downlink) sentPion(pkt *rtp.Packet, now time.Time) {
	dl.stats.sent(pkt.Timestamp, len(pkt.Payload), now)
}

// forwarder is the scratch space of one goroutine that forwards packets.
type forwarder struct {
	m       *metrics
	pkt     rtp.Packet // reused, as in writeLoop
	plain   [receiveMTU]byte
	crypted [receiveMTU + 64]byte
}

// readUplink forwards the participant's microphone as Pion reads it,
// until its PeerConnection closes; once the direct path takes the
// uplink's packets off the port (srtpdirect.Conn), Pion has none left to
// read. Each packet is read once into a pooled buffer.
func (p *participant) readUplink(t *webrtc.TrackRemote, levelID int, m *metrics) {
	f := &forwarder{m: m}
	for {
		pk := packetPool.Get().(*packet)
		n, _, err := t.Read(pk.buf[:])
		if err != nil {
			packetPool.Put(pk)
			return
		}
		pk.n = n
		p.forward(pk, levelID, f)
	}
}

// forward sends pk, a packet of p's microphone, to p's subscribers, and
// hands the packet back to the pool once they are done with it. A
// subscriber on the direct path (direct.go) gets it protected and written
// at once, from this goroutine; so does, through Pion's track, any other
// subscriber connected over UDP: a UDP write does not wait for the peer.
// Any other subscriber (ICE-TCP, where a write can block) gets it queued
// without a copy for its writer; a subscriber whose queue is full misses
// it, and the drop is counted.
func (p *participant) forward(pk *packet, levelID int, f *forwarder) {
	p.fwdMu.Lock()
	p.forwardLocked(pk, levelID, f)
	p.fwdMu.Unlock()
}

// forwardLocked is forward with p.fwdMu held.
func (p *participant) forwardLocked(pk *packet, levelID int, f *forwarder) {
	m, n := f.m, pk.n
	now := time.Now()
	p.received.packet(pk.buf[:n], now)
	if levelID != 0 {
		if lvl, ok := audioLevel(pk.buf[:n], levelID); ok {
			p.level.observe(lvl, now)
		}
	}
	if p.muted.Load() {
		m.droppedMuted.Inc()
		packetPool.Put(pk)
		return
	}
	subs := *p.fanout.Load()
	if len(subs) == 0 || n < 12 {
		packetPool.Put(pk)
		return
	}
	pk.refs.Store(int32(len(subs)))
	parsed := false
	var plain []byte
	for _, dl := range subs {
		if tx := dl.sub.direct.Sender(); tx != nil && dl.ready.Load() {
			// The shared buffer stays untouched for the queues: the
			// direct path copies the packet once and rewrites only the
			// copy's SSRC and payload type for each subscriber.
			if plain == nil {
				plain = f.plain[:copy(f.plain[:], pk.buf[:n])]
			}
			plain[1] = plain[1]&0x80 | opusPayloadType
			binary.BigEndian.PutUint32(plain[8:12], dl.ssrc)
			ts, payload, err := tx.Send(plain, f.crypted[:])
			if payload >= 0 {
				dl.stats.sent(ts, payload, now)
			}
			if err == nil {
				m.forwarded.Inc()
				m.directOut.Inc()
			}
			pk.release()
			continue
		}
		if dl.sub.onUDP.Load() {
			// The header is parsed once for every such subscriber
			// (WriteRTP rewrites only the SSRC and payload type).
			if !parsed {
				parsed = f.pkt.Unmarshal(pk.buf[:n]) == nil
			}
			if parsed && dl.track.WriteRTP(&f.pkt) == nil {
				dl.sentPion(&f.pkt, now)
				m.forwarded.Inc()
			}
			pk.release()
			continue
		}
		select {
		case dl.sub.queue <- outPacket{dl: dl, p: pk}:
		default:
			m.droppedQueue.Inc()
			pk.release()
		}
	}
	f.pkt.Payload = nil
}

// writeLoop writes the packets queued for this subscriber until it is
// removed. A write that blocks (a stalled ICE-TCP connection) holds up
// this subscriber only.
func (p *participant) writeLoop() {
	m := p.room.v.metrics
	// The header is parsed into one packet reused for every write, which
	// keeps its extension slice; its payload points into the shared
	// buffer, which nothing writes to.
	var pkt rtp.Packet
	for {
		select {
		case op := <-p.queue:
			if pkt.Unmarshal(op.p.buf[:op.p.n]) == nil && op.dl.track.WriteRTP(&pkt) == nil {
				op.dl.sentPion(&pkt, time.Now())
				m.forwarded.Inc()
			}
			pkt.Payload = nil
			op.p.release()
		case <-p.done:
			for {
				select {
				case op := <-p.queue:
					op.p.release()
				default:
					return
				}
			}
		}
	}
}

// audioLevel finds the RFC 6464 audio level (0 loudest to 127 silence, in
// -dBov) in an RTP packet's one-byte header extensions (RFC 8285) with
// the given id. It does not allocate.
func audioLevel(b []byte, id int) (int, bool) {
	if len(b) < 12 || b[0]>>6 != 2 || b[0]&0x10 == 0 {
		return 0, false
	}
	off := 12 + 4*int(b[0]&0x0f)
	if len(b) < off+4 {
		return 0, false
	}
	profile := uint16(b[off])<<8 | uint16(b[off+1])
	words := int(b[off+2])<<8 | int(b[off+3])
	off += 4
	end := off + 4*words
	if len(b) < end || profile != 0xBEDE {
		return 0, false
	}
	for off < end {
		h := b[off]
		if h == 0 { // padding
			off++
			continue
		}
		eid := int(h >> 4)
		l := int(h&0x0f) + 1
		if eid == 15 {
			return 0, false
		}
		off++
		if off+l > end {
			return 0, false
		}
		if eid == id {
			return int(b[off] & 0x7f), true
		}
		off += l
	}
	return 0, false
}
