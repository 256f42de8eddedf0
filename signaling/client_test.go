package signaling_test

import (
	"encoding/json"

	"github.com/partyline/partyline/internal/server/servertest"
	"github.com/partyline/partyline/realtime/wire"
)

// client is a WebSocket connection that said hello as its user. Besides
// what servertest.Client keeps, it hands voice notifications to its peer
// in order.
type client struct {
	*servertest.Client
	voice chan []byte // voice.offer and voice.ice, in order; closed when reading ends
}

func (s *stack) dial(user string) *client {
	s.t.Helper()
	voice := make(chan []byte, 1024)
	c := s.srv.Dial(s.t, user, func(m wire.Message) bool {
		switch m.Type {
		case wire.TypeVoiceOffer, wire.TypeVoiceICE:
			voice <- m.Raw
			return true
		}
		return false
	})
	go func() {
		<-c.Done()
		close(voice)
	}()
	return &client{Client: c, voice: voice}
}

// msgsOf returns the msgs of the given kind received so far.
func (c *client) msgsOf(kind string) []wire.Message {
	return c.Notes(func(m wire.Message) bool { return m.Type == wire.TypeMsg && m.Kind == kind })
}

// eventsNamed returns the events of the given name received so far.
func (c *client) eventsNamed(name string) []wire.Message {
	return c.Notes(func(m wire.Message) bool { return m.Type == wire.TypeEvent && m.Event == name })
}

// errorMsgs returns the error messages without a request id received so
// far.
func (c *client) errorMsgs() []map[string]any {
	var out []map[string]any
	for _, m := range c.Notes(func(m wire.Message) bool { return m.Type == wire.TypeError }) {
		var e map[string]any
		_ = json.Unmarshal(m.Raw, &e)
		out = append(out, e)
	}
	return out
}
