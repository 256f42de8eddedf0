package signaling

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

func rtpBytes(seq uint16, ts, ssrc uint32) []byte {
	b := make([]byte, 12)
	b[0] = 0x80
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
	return b
}

// TestReceiverReportCounts checks the receiver report of an uplink across
// a sequence number wrap, a loss and a late packet (RFC 3550 A.3).
func TestReceiverReportCounts(t *testing.T) {
	var s recvStats
	t0 := time.Unix(1000, 0)
	if _, ok := s.report(t0); ok {
		t.Fatal("a report before any packet")
	}
	// 65530..65535, 0..9 with 3 and 4 lost, then 3 arriving late.
	seqs := []uint16{65530, 65531, 65532, 65533, 65534, 65535, 0, 1, 2, 5, 6, 7, 8, 9, 3}
	for i, q := range seqs {
		s.packet(rtpBytes(q, uint32(i)*960, 7), t0.Add(time.Duration(i)*20*time.Millisecond))
	}
	s.senderReport(&rtcp.SenderReport{SSRC: 7, NTPTime: 0x0001_2345_6789_0000}, t0)
	r, ok := s.report(t0.Add(500 * time.Millisecond))
	if !ok {
		t.Fatal("no report")
	}
	if r.SSRC != 7 || r.LastSequenceNumber != 1<<16|9 {
		t.Errorf("ssrc %d, extended highest %#x; want 7, 0x10009", r.SSRC, r.LastSequenceNumber)
	}
	if r.TotalLost != 1 {
		t.Errorf("total lost %d, want 1 (16 expected, 15 received)", r.TotalLost)
	}
	if want := uint8(256 / 16); r.FractionLost != want {
		t.Errorf("fraction lost %d, want %d", r.FractionLost, want)
	}
	if r.LastSenderReport != 0x2345_6789 || r.Delay != 65536/2 {
		t.Errorf("LSR %#x DLSR %d, want 0x23456789 and %d", r.LastSenderReport, r.Delay, 65536/2)
	}
	if r.Jitter != 0 {
		t.Errorf("jitter %d for packets sent and received at 20 ms, want 0", r.Jitter)
	}
	// The next interval loses nothing.
	s.packet(rtpBytes(10, 15*960, 7), t0.Add(time.Second))
	if r, _ := s.report(t0.Add(time.Second)); r.FractionLost != 0 || r.TotalLost != 1 {
		t.Errorf("next interval: fraction %d total %d, want 0 and 1", r.FractionLost, r.TotalLost)
	}
	// Packets arriving 10 ms apart for 20 ms of audio: jitter grows.
	for i := range 20 {
		s.packet(rtpBytes(uint16(11+i), uint32(16+i)*960, 7), t0.Add(time.Second+time.Duration(i+1)*10*time.Millisecond))
	}
	if r, _ := s.report(t0.Add(2 * time.Second)); r.Jitter == 0 {
		t.Error("jitter stayed 0 with packets arriving at twice their rate")
	}
}
