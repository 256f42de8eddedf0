package signaling

import (
	"github.com/pion/webrtc/v4"

	"github.com/partyline/partyline/signaling/internal/srtpdirect"
)

// The direct path (internal/srtpdirect). A subscriber whose selected ICE
// pair is UDP on the node's port, and whose DTLS keys the node learned,
// gets its packets protected by the node and written straight to its
// address, and a publisher's packets are taken off the port and
// unprotected by the node. Pion still runs ICE, DTLS and RTCP for the
// session; the node sends the RTCP reports itself (reports.go). With
// Options.DisableDirectPath, no session takes it.

// selectedPair records a new selected pair for both paths.
func (p *participant) selectedPair(pair *webrtc.ICECandidatePair) {
	p.onUDP.Store(p.direct.SelectedPair(pair))
}

// uplink is a publisher's microphone on the direct path: the port's
// readers hand it the packets they take.
type uplink struct {
	p       *participant
	levelID int         // the audio level extension's id; 0 if none
	fws     []forwarder // one per reader of the port
}

// ForwardRTP unprotects b into a pooled packet and forwards it on the
// reader's goroutine, as Pion's path does on the uplink reader's.
func (u *uplink) ForwardRTP(reader int, rx *srtpdirect.Receiver, b []byte) {
	pk := packetPool.Get().(*packet)
	p := u.p
	p.fwdMu.Lock()
	defer p.fwdMu.Unlock()
	n, ok := rx.Open(pk.buf[:], b)
	if !ok {
		packetPool.Put(pk)
		return
	}
	f := &u.fws[reader]
	f.m.directIn.Inc()
	pk.n = n
	p.forwardLocked(pk, u.levelID, f)
}
