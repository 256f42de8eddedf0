package realtime

import "github.com/partyline/partyline/realtime/wire"

// Replied is the result a RequestHandler returns after it queued its ok
// reply itself with Session.Reply; the gateway then sends no reply of its
// own. It exists for handlers whose reply must precede notifications they
// queue: voice.join's ok carries the ICE servers the client needs before
// it can take the first voice.offer, which the handler queues right after.
var Replied any = replied

// Reply queues the ok reply to request id with result's fields (a struct
// or map encoding to a JSON object, or nil), as the gateway would for a
// handler's result. A handler that calls it returns Replied. It never
// blocks; an encoding error is returned and nothing is queued.
func (s *Session) Reply(id uint64, result any) error {
	b, err := wire.AppendOK(nil, id, result)
	if err != nil {
		return err
	}
	s.c.send(b)
	return nil
}
