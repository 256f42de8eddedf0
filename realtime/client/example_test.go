package client_test

import (
	"context"
	"log"
	"os"

	"github.com/partyline/partyline/realtime/client"
	"github.com/partyline/partyline/realtime/wire"
)

// Example joins a room, posts to it and follows it, reloading history when
// the client reports that messages may be missing. It needs a running
// gateway, so it is compiled but not run.
func Example() {
	ctx := context.Background()
	c, err := client.Dial(ctx, client.Options{
		URL: "http://127.0.0.1:8080",
		Token: func(ctx context.Context) (string, error) {
			// Called on every (re)connect: return a fresh token here.
			return os.Getenv("PARTYLINE_TOKEN"), nil
		},
		ClientName: "example/1",
	})
	if err != nil {
		log.Fatalf("dial: %v (error code %q, close code %d)", err, client.ErrorCode(err), client.CloseCode(err))
	}
	defer c.Close()

	if _, err := c.Subscribe(ctx, "room:r_9f2"); err != nil {
		log.Fatal(err)
	}
	if _, _, err := c.Publish(ctx, "room:r_9f2", map[string]string{"text": "gg"}, "first-gg"); err != nil {
		log.Fatal(err)
	}

	for m := range c.Messages() {
		switch {
		case m.Type == wire.TypeMsg:
			log.Printf("%s #%d from %s: %s", m.Channel, m.Offset, m.From, m.Data)
		case client.NeedsReload(m):
			msgs, _, err := c.History(ctx, m.Channel, "", 50)
			if err != nil {
				log.Print(err)
				continue
			}
			log.Printf("%s reloaded: %d messages", m.Channel, len(msgs))
		case m.Type == client.TypeReconnected:
			log.Printf("reconnected to %s", c.Node())
		}
	}
	// Messages is closed: the client gave up (or was closed).
	log.Printf("client stopped: %v", c.Err())
}
