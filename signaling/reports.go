package signaling

import (
	"sync"
	"time"

	"github.com/pion/rtcp"
)

// reportInterval is how often a subscriber gets a sender report for each
// stream it is sent (RFC 3550 section 6.4.1), as Pion's own interceptor
// would: every stream is counted here, whichever path writes it, so a
// stream never has two reporters.
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

// scheduleReports sends the participant its streams' sender reports every
// reportInterval until it is removed.
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
	for _, dl := range *p.downs.Load() {
		if sr := dl.stats.report(dl.ssrc, now); sr != nil {
			pkts = append(pkts, sr)
		}
	}
	if len(pkts) > 0 {
		_ = p.pc.WriteRTCP(pkts)
	}
}
