package wire

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestSplit(t *testing.T) {
	var got []string
	err := Split([]byte("a\n\n b \nc\n"), func(m []byte) error {
		got = append(got, string(m))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "b", "c"}, got); diff != "" {
		t.Fatalf("Split (-want +got):\n%s", diff)
	}
	stop := errors.New("stop")
	n := 0
	if err := Split([]byte("a\nb"), func([]byte) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("Split did not stop at the first error: %v after %d", err, n)
	}
}

func TestDecodeRequest(t *testing.T) {
	for _, tc := range []struct {
		in       string
		protocol bool
		bad      bool
		want     Request
	}{
		{in: `{"type":"ping","id":7}`, want: Request{Type: "ping", ID: 7}},
		{in: `{"type":"typing","channel":"room:r"}`, want: Request{Type: "typing", Channel: "room:r"}},
		{in: `{"type":"sub","id":2,"channel":"room:r","since":{"epoch":"e","offset":41},"x":1}`,
			want: Request{Type: "sub", ID: 2, Channel: "room:r", Since: &Position{Epoch: "e", Offset: 41}}},
		{in: `not json`, protocol: true},
		{in: `{"id":1}`, protocol: true},
		{in: `{"type":""}`, protocol: true},
		{in: `{"type":"ping"}`, protocol: true},
		{in: `{"type":"ping","id":1.5}`, protocol: true},
		{in: `{"type":"ping","id":"1"}`, protocol: true},
		{in: `{"type":"ping","id":18446744073709551616}`, protocol: true},
		{in: `{"type":"sub","id":3,"channel":7}`, bad: true},
		{in: `{"type":"sub","id":3,"limit":"x"}`, bad: true},
	} {
		got, err := DecodeRequest([]byte(tc.in))
		var bad *BadRequestError
		switch {
		case tc.protocol:
			if !errors.Is(err, ErrProtocol) {
				t.Errorf("%s: err = %v, want a protocol violation", tc.in, err)
			}
		case tc.bad:
			if !errors.As(err, &bad) || bad.ID != 3 {
				t.Errorf("%s: err = %v, want a bad request for id 3", tc.in, err)
			}
		default:
			if err != nil {
				t.Errorf("%s: %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.in, diff)
			}
		}
	}
}

func TestEncoders(t *testing.T) {
	payload := AppendPayload(nil, "01J", "message", "u_1", 1732760000123, json.RawMessage(`{"text":"gg"}`))
	msg := AppendMsg(nil, "room:r_9f2", Position{Epoch: "k3j2", Offset: 58}, payload)
	want := `{"type":"msg","channel":"room:r_9f2","offset":58,"epoch":"k3j2","id":"01J","kind":"message","from":"u_1","ts":1732760000123,"data":{"text":"gg"}}`
	if string(msg) != want {
		t.Fatalf("msg =\n%s\nwant\n%s", msg, want)
	}
	m, err := DecodeMessage(msg)
	if err != nil || m.MsgID != "01J" || m.Offset != 58 || m.ID != 0 {
		t.Fatalf("decoded %+v, %v", m, err)
	}
	for _, tc := range []struct{ got, want string }{
		{string(AppendEvent(nil, "voice:r", "speaking", "", "", []string{"u_1", "u_2"})), `{"type":"event","channel":"voice:r","event":"speaking","users":["u_1","u_2"]}`},
		{string(AppendEvent(nil, "room:r", "typing", "u_1", "", nil)), `{"type":"event","channel":"room:r","event":"typing","from":"u_1"}`},
		{string(AppendGap(nil, "room:r", Position{Epoch: "e", Offset: 61})), `{"type":"gap","channel":"room:r","epoch":"e","offset":61}`},
		{string(AppendReconnect(nil, 3500, "shutdown")), `{"type":"reconnect","after_ms":3500,"reason":"shutdown"}`},
		{string(AppendError(nil, 7, "forbidden", `not a "member"`)), `{"type":"error","id":7,"code":"forbidden","message":"not a \"member\""}`},
	} {
		if tc.got != tc.want {
			t.Errorf("got  %s\nwant %s", tc.got, tc.want)
		}
	}
	ok, err := AppendOK(nil, 9, map[string]int{"count": 2})
	if err != nil || string(ok) != `{"type":"ok","id":9,"count":2}` {
		t.Fatalf("ok = %s %v", ok, err)
	}
	ok, _ = AppendOK(nil, 9, nil)
	if string(ok) != `{"type":"ok","id":9}` {
		t.Fatalf("ok = %s", ok)
	}
}

// FuzzDecode feeds arbitrary frames through the splitter and the request
// decoder: they must never panic, and what they accept must be well formed.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"hello","id":1,"token":"t"}`,
		"{\"type\":\"ping\",\"id\":2}\n{\"type\":\"typing\",\"channel\":\"room:r\"}",
		`{"type":"sub","id":3,"channel":"room:r","since":{"epoch":"e","offset":1}}`,
		`{"type":"pub","id":4,"channel":"room:r","data":{"text":"gg"},"idem":"x"}`,
		`{"type":"voice.ice","room":"r","candidate":{"candidate":"c"}}`,
		`{"id":1}`, `[]`, `{"type":"ping","id":-1}`, "\n\n", `{"type":"sub","id":1,"since":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		_ = Split(frame, func(msg []byte) error {
			if len(msg) == 0 {
				t.Fatal("Split yielded an empty message")
			}
			req, err := DecodeRequest(msg)
			var bad *BadRequestError
			switch {
			case err == nil:
				if req.Type == "" || (req.ID == 0 && !IsNotification(req.Type)) {
					t.Fatalf("accepted %q as %+v", msg, req)
				}
			case errors.As(err, &bad):
				if bad.ID == 0 && !IsNotification(bad.Type) {
					t.Fatalf("a bad request without an id to answer: %q", msg)
				}
			case !errors.Is(err, ErrProtocol):
				t.Fatalf("unexpected error kind %v", err)
			}
			return nil
		})
	})
}

// FuzzAppendString checks the string encoder against encoding/json.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"room:r_9f2", `a"b\c`, "\n\t\x00", "é<>&", "\xff", strings.Repeat("x", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := AppendString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("AppendString(%q) = %s, not JSON: %v", s, b, err)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("round trip of %q gave %q", s, back)
		}
	})
}
