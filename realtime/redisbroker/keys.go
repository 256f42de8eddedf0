package redisbroker

import (
	"encoding/hex"
	"errors"
	"strconv"
	"strings"

	"github.com/partyline/partyline/realtime"
)

// keyspace names the keys and pub/sub channels under one prefix. Every
// name of one channel carries the same hash tag, so in a cluster they live
// in one slot and a Lua script can touch them all (see doc.go).
type keyspace struct {
	prefix string
}

// tagged returns prefix{tag}, the base of every name whose hash tag is s.
func (k keyspace) tagged(s string) string {
	return k.prefix + "{" + hashTag(s) + "}"
}

// channel is the pub/sub channel of ch's publications and events.
func (k keyspace) channel(ch string) string { return k.tagged(ch) }

// meta is the hash of ch's epoch ("e"), last offset ("o") and last append
// time ("t").
func (k keyspace) meta(ch string) string { return k.tagged(ch) + ":m" }

// stream is the Redis stream holding ch's retained publications.
func (k keyspace) stream(ch string) string { return k.tagged(ch) + ":s" }

// presence returns the three keys of ch's presence: the sorted set of
// connection ids by expiry, the hash of connection id to member, and the
// hash of user to connection count, and the list of users whose last
// connection expired, kept for Reap.
func (k keyspace) presence(ch string) []string {
	base := k.tagged(ch)
	return []string{base + ":p", base + ":pc", base + ":pu", base + ":pg"}
}

// node is the pub/sub channel of the node with the given id.
func (k keyspace) node(id string) string { return k.tagged("node:" + id) }

// probe is the n-th candidate for a probe channel of node id: the broker
// picks the first that hashes to the shard it wants to probe (see
// Broker.probeChannel).
func (k keyspace) probe(id string, n int) string {
	return k.tagged("node:" + id + ":probe:" + strconv.Itoa(n))
}

// nodes is the sorted set of live node ids, scored by the expiry of their
// registration in Unix milliseconds (Redis time).
func (k keyspace) nodes() string { return k.prefix + "{nodes}" }

// presenceIndex is a ZSET of the channels that have presence entries,
// scored by when one of them may next expire (Unix ms).
func (k keyspace) presenceIndex() string { return k.prefix + "{presence-index}" }

// offlineDue is a ZSET of the users whose status is due to turn offline,
// scored by when (Unix ms, Redis time); see Presence.ScheduleOffline.
func (k keyspace) offlineDue() string { return k.prefix + "{offline-due}" }

// status is the string key holding the user's status.
func (k keyspace) status(user string) string { return k.tagged("status:"+user) + ":v" }

// hashTag returns s as it goes between the braces of a name. Most names go
// as they are. An empty name, or one with a '}' (which would end the tag
// early and split one channel's names over several slots), is spelled as
// '~' and its bytes in hex instead; '~' is escaped the same way, so no two
// names share a spelling.
func hashTag(s string) string {
	if s != "" && !strings.ContainsAny(s, "}~") {
		return s
	}
	return "~" + hex.EncodeToString([]byte(s))
}

// A publication travels over pub/sub as "<epoch> <offset>\n<payload>": the
// epoch (empty for an ephemeral event), one space, the offset in decimal
// (0 for an event), one newline, then the payload bytes as they are. Only
// the first space and the first newline after it separate, so the payload
// may hold any bytes.

// appendEvent appends the pub/sub message of an ephemeral event.
func appendEvent(dst, payload []byte) []byte {
	dst = append(dst, " 0\n"...)
	return append(dst, payload...)
}

var errMalformed = errors.New("redis: malformed pub/sub message")

// decodePublication parses a pub/sub message made by the publish script or
// appendEvent. The payload is copied out of msg.
func decodePublication(msg string) (realtime.Publication, error) {
	sp := strings.IndexByte(msg, ' ')
	if sp < 0 {
		return realtime.Publication{}, errMalformed
	}
	nl := strings.IndexByte(msg[sp+1:], '\n')
	if nl < 0 {
		return realtime.Publication{}, errMalformed
	}
	nl += sp + 1
	off, err := strconv.ParseUint(msg[sp+1:nl], 10, 64)
	if err != nil {
		return realtime.Publication{}, errMalformed
	}
	epoch := msg[:sp]
	if (epoch == "") != (off == 0) {
		return realtime.Publication{}, errMalformed
	}
	return realtime.Publication{
		Position: realtime.Position{Epoch: epoch, Offset: off},
		Payload:  []byte(msg[nl+1:]),
	}, nil
}

// Messages on a node's channel, and on its probe channels, start with a
// kind byte: nodeMessage before the bytes given to SendNode, probeMessage
// before a probe's token in decimal.
const (
	nodeMessage  = 'm'
	probeMessage = 'p'
)

// newEpoch returns 10 random characters (50 bits). Every call that may
// create a channel's epoch passes one; the script uses it only when the
// channel has none.
func newEpoch() string { return realtime.NewEpoch(10) }
