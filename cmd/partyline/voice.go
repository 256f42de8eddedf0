package main

import (
	"strings"

	"github.com/partyline/partyline/signaling"
)

// setupVoice builds the voice SFU. With Redis, a voice room's media node
// is recorded there so that every node signals its participants through
// that one; with the memory broker everything is on this node. Its Run
// opens the sockets and is started by serve; the node is attached by
// setupRealtime.
func (a *app) setupVoice() error {
	opts := signaling.Options{
		Members:    signaling.ChatMembers{Store: a.store},
		UDPAddr:    a.cfg.VoiceUDPAddr,
		PublicIP:   a.cfg.VoicePublicIP,
		STUNURLs:   splitList(a.cfg.VoiceSTUNURLs),
		TURNURLs:   splitList(a.cfg.VoiceTURNURLs),
		TURNSecret: a.cfg.VoiceTURNSecret,
		Registerer: a.registry,
		Logger:     a.logger,
	}
	opts.DisableDirectPath = !a.cfg.voiceDirectPath()
	if a.backend.redis != nil {
		p, err := signaling.NewRedisPlacement(signaling.RedisPlacementOptions{Client: a.backend.redis})
		if err != nil {
			return err
		}
		opts.Placement = p
	}
	v, err := signaling.New(opts)
	if err != nil {
		return err
	}
	a.voice = v
	return nil
}

// splitList reads a comma-separated setting.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
