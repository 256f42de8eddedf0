package loadtest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestScanMessage(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		want scanned
	}{
		{
			name: "bench msg",
			msg:  `{"type":"msg","channel":"broadcast:bench","offset":58,"epoch":"k3j2","id":"01JD","kind":"bench","ts":1732760000123,"data":{"sent":1732760000123456789,"pad":"xx"}}`,
			want: scanned{kind: kindMsg, offset: 58, hasOffset: true, sent: 1732760000123456789, hasSent: true},
		},
		{
			name: "msg without sent",
			msg:  `{"type":"msg","channel":"room:r","offset":3,"epoch":"e","id":"x","kind":"message","ts":1,"data":{"text":"gg"}}`,
			want: scanned{kind: kindMsg, offset: 3, hasOffset: true},
		},
		{
			name: "offset key inside data is not the envelope's",
			msg:  `{"type":"msg","channel":"c:x","offset":7,"epoch":"e","data":{"offset":99,"sent":5}}`,
			want: scanned{kind: kindMsg, offset: 7, hasOffset: true, sent: 5, hasSent: true},
		},
		{
			name: "gap",
			msg:  `{"type":"gap","channel":"c:x","epoch":"e","offset":61}`,
			want: scanned{kind: kindGap},
		},
		{
			name: "event",
			msg:  `{"type":"event","channel":"broadcast:bench","event":"join","user":"u_2"}`,
			want: scanned{kind: kindEvent},
		},
		{
			name: "ok reply",
			msg:  `{"type":"ok","id":2,"epoch":"e","offset":57,"recovered":false}`,
			want: scanned{kind: kindOther},
		},
		{
			name: "sent not a number",
			msg:  `{"type":"msg","offset":1,"data":{"sent":"soon"}}`,
			want: scanned{kind: kindMsg, offset: 1, hasOffset: true},
		},
		{
			name: "sent overflows int64",
			msg:  `{"type":"msg","offset":1,"data":{"sent":9223372036854775808}}`,
			want: scanned{kind: kindMsg, offset: 1, hasOffset: true},
		},
		{
			name: "empty",
			msg:  ``,
			want: scanned{kind: kindOther},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := scanMessage([]byte(tt.msg))
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(scanned{})); diff != "" {
				t.Errorf("scanMessage(%s) (-want +got):\n%s", tt.msg, diff)
			}
		})
	}
}

func TestParseUint(t *testing.T) {
	tests := []struct {
		in     string
		v      uint64
		n      int
		wantOK bool
	}{
		{"123,", 123, 3, true},
		{"0", 0, 1, true},
		{"18446744073709551615}", 1<<64 - 1, 20, true},
		{"18446744073709551616", 0, 0, false},
		{"", 0, 0, false},
		{"-1", 0, 0, false},
		{`"7"`, 0, 0, false},
	}
	for _, tt := range tests {
		v, n, ok := parseUint([]byte(tt.in))
		if v != tt.v || n != tt.n || ok != tt.wantOK {
			t.Errorf("parseUint(%q) = %d, %d, %v; want %d, %d, %v", tt.in, v, n, ok, tt.v, tt.n, tt.wantOK)
		}
	}
}

func TestNextMessage(t *testing.T) {
	frame := []byte("{\"a\":1}\n\n  {\"b\":2} \n{\"c\":3}")
	var got []string
	for len(frame) > 0 {
		var msg []byte
		msg, frame = nextMessage(frame)
		got = append(got, string(msg))
	}
	want := []string{`{"a":1}`, ``, `{"b":2}`, `{"c":3}`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
}
