package signaling

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"strconv"
	"time"
)

// ICEServer is one entry of the join reply's ice_servers, in the shape of
// the browser's RTCIceServer.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// iceServers returns what a joining user gets: the STUN servers, and the
// TURN servers with credentials that expire after ttl. It never returns
// nil, so the reply always carries a list.
func iceServers(opts *Options, user string, now time.Time) []ICEServer {
	out := []ICEServer{}
	if len(opts.STUNURLs) > 0 {
		out = append(out, ICEServer{URLs: append([]string(nil), opts.STUNURLs...)})
	}
	if opts.TURNSecret != "" && len(opts.TURNURLs) > 0 {
		name, cred := TURNCredentials(opts.TURNSecret, user, now.Add(opts.TURNTTL))
		out = append(out, ICEServer{URLs: append([]string(nil), opts.TURNURLs...), Username: name, Credential: cred})
	}
	return out
}

// TURNCredentials returns time-limited TURN credentials for user in the
// TURN REST API scheme that TURN servers such as coturn check with a
// shared secret: the username is "<expiry unix seconds>:<user>" and the
// credential is base64(HMAC-SHA1(secret, username)).
func TURNCredentials(secret, user string, expires time.Time) (username, credential string) {
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + user
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
