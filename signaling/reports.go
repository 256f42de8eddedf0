package signaling

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/pion/rtcp"
)

// reportInterval is how often a participant gets a sender report for each
// stream it is sent and a receiver report for its uplink (RFC 3550
// section 6.4), as Pion's own interceptors would. Both are the node's:
// every packet is counted here, whichever path carries it, while Pion's
// interceptors would not see the direct path's.
const reportInterval = time.Second

// sendStats counts what one downlink has sent, for its sender reports.
type sendStats struct {
	mu      sync.Mutex
	packets uint32
	octets  uint32
	lastTS  uint32    // RTP timestamp of the last packet
	lastAt  time.Time // when it was sent
}

// sent counts a packet of payload bytes with RTP timestamp ts.
func (s *sendStats) sent(ts uint32, payload int, now time.Time) {
	s.mu.Lock()
	s.packets++
	s.octets += uint32(payload)
	s.lastTS = ts
	s.lastAt = now
	s.mu.Unlock()
}

// report is the stream's sender report at now, or nil before its first
// packet (a source that has sent nothing sends none).
func (s *sendStats) report(ssrc uint32, now time.Time) *rtcp.SenderReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.packets == 0 {
		return nil
	}
	return &rtcp.SenderReport{
		SSRC:        ssrc,
		NTPTime:     ntpTime(now),
		RTPTime:     s.lastTS + uint32(now.Sub(s.lastAt).Seconds()*float64(opusCodec.ClockRate)),
		PacketCount: s.packets,
		OctetCount:  s.octets,
	}
}

// ntpTime is t as a 64-bit NTP timestamp (seconds since 1900 in the high
// 32 bits, the fraction in the low).
func ntpTime(t time.Time) uint64 {
	const ntpEpochOffset = 2208988800 // 1900-01-01 to 1970-01-01, in seconds
	ns := uint64(t.UnixNano()) + ntpEpochOffset*uint64(time.Second)
	secs := ns / uint64(time.Second)
	frac := (ns % uint64(time.Second)) << 32 / uint64(time.Second)
	return secs<<32 | frac
}

// scheduleReports sends the participant the node's RTCP reports every
// reportInterval until it is removed: a receiver report on its microphone
// and a sender report for each stream it is sent.
func (p *participant) scheduleReports() {
	time.AfterFunc(reportInterval, func() {
		select {
		case <-p.done:
			return
		default:
		}
		p.sendReports(time.Now())
		p.scheduleReports()
	})
}

func (p *participant) sendReports(now time.Time) {
	var pkts []rtcp.Packet
	p.fwdMu.Lock()
	rr, ok := p.received.report(now)
	p.fwdMu.Unlock()
	if ok {
		pkts = append(pkts, &rtcp.ReceiverReport{SSRC: p.rrSSRC, Reports: []rtcp.ReceptionReport{rr}})
	}
	for _, dl := range *p.downs.Load() {
		if sr := dl.stats.report(dl.ssrc, now); sr != nil {
			pkts = append(pkts, sr)
		}
	}
	if len(pkts) > 0 {
		_ = p.pc.WriteRTCP(pkts)
	}
}

// recvStats is what an uplink has received, for its receiver reports
// (RFC 3550 section 6.4.1 and appendix A.3 and A.8).
type recvStats struct {
	started       bool
	ssrc          uint32
	baseSeq       uint16
	maxSeq        uint16
	cycles        uint32 // sequence number wraps, shifted left 16
	received      uint32
	expectedPrior uint32
	receivedPrior uint32
	epoch         time.Time // arrival times count from here
	transit       int64     // the last packet's, in RTP units
	jitter        float64
	lastSR        uint32 // the middle 32 bits of the last sender report's NTP time
	lastSRAt      time.Time
}

// packet counts an RTP packet (plaintext) that arrived at now.
func (s *recvStats) packet(b []byte, now time.Time) {
	if len(b) < 12 {
		return
	}
	seq := binary.BigEndian.Uint16(b[2:4])
	ts := binary.BigEndian.Uint32(b[4:8])
	ssrc := binary.BigEndian.Uint32(b[8:12])
	if !s.started || ssrc != s.ssrc {
		*s = recvStats{started: true, ssrc: ssrc, baseSeq: seq, maxSeq: seq, epoch: now, lastSR: s.lastSR, lastSRAt: s.lastSRAt}
	} else if d := seq - s.maxSeq; d != 0 && d < 1<<15 {
		if seq < s.maxSeq {
			s.cycles += 1 << 16
		}
		s.maxSeq = seq
	}
	s.received++
	arrival := int64(now.Sub(s.epoch) * time.Duration(opusCodec.ClockRate) / time.Second)
	transit := arrival - int64(ts)
	if s.received > 1 {
		d := transit - s.transit
		if d < 0 {
			d = -d
		}
		s.jitter += (float64(d) - s.jitter) / 16
	}
	s.transit = transit
}

// senderReport notes the publisher's sender report, for the LSR and DLSR
// fields.
func (s *recvStats) senderReport(sr *rtcp.SenderReport, now time.Time) {
	if s.started && sr.SSRC != s.ssrc {
		return
	}
	s.lastSR = uint32(sr.NTPTime >> 16)
	s.lastSRAt = now
}

// report is the uplink's reception report at now; none before its first
// packet.
func (s *recvStats) report(now time.Time) (rtcp.ReceptionReport, bool) {
	if !s.started {
		return rtcp.ReceptionReport{}, false
	}
	ext := s.cycles | uint32(s.maxSeq)
	expected := ext - uint32(s.baseSeq) + 1
	lost := int64(expected) - int64(s.received)
	lost = max(min(lost, 1<<23-1), -(1 << 23)) // 24-bit signed
	expInt, recvInt := expected-s.expectedPrior, s.received-s.receivedPrior
	s.expectedPrior, s.receivedPrior = expected, s.received
	var fraction uint8
	if lostInt := int64(expInt) - int64(recvInt); expInt != 0 && lostInt > 0 {
		fraction = uint8(lostInt << 8 / int64(expInt))
	}
	var delay uint32
	if !s.lastSRAt.IsZero() {
		delay = uint32(now.Sub(s.lastSRAt) * 65536 / time.Second)
	}
	return rtcp.ReceptionReport{
		SSRC:               s.ssrc,
		FractionLost:       fraction,
		TotalLost:          uint32(lost) & 0xffffff,
		LastSequenceNumber: ext,
		Jitter:             uint32(s.jitter),
		LastSenderReport:   s.lastSR,
		Delay:              delay,
	}, true
}
