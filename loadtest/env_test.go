package loadtest

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseLocalIPs(t *testing.T) {
	addrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	for _, tc := range []struct {
		in      string
		want    []netip.Addr
		wantErr string
	}{
		{"", nil, ""},
		{"127.0.0.2", addrs("127.0.0.2"), ""},
		{"127.0.0.2-127.0.0.4", addrs("127.0.0.2", "127.0.0.3", "127.0.0.4"), ""},
		{"127.0.0.2, 127.0.0.9", addrs("127.0.0.2", "127.0.0.9"), ""},
		{"127.0.1.0/30", addrs("127.0.1.1", "127.0.1.2"), ""}, // no network or broadcast address
		{"127.0.1.7/32", addrs("127.0.1.7"), ""},
		{"::1", addrs("::1"), ""},
		{"127.0.0.5-127.0.0.2", nil, "in order"},
		{"127.0.0.1-::1", nil, "one family"},
		{"127.0.0.300", nil, "--local-ips"},
		{"10.0.0.0/8", nil, "more than 65536"},
		{"nonsense/4", nil, "--local-ips"},
	} {
		got, err := ParseLocalIPs(tc.in)
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseLocalIPs(%q) error %v, want %q", tc.in, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("ParseLocalIPs(%q): %v", tc.in, err)
		default:
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("ParseLocalIPs(%q) (-want +got):\n%s", tc.in, diff)
			}
		}
	}
}

// TestSpreadDialer checks that connections leave from the local addresses
// in turn.
func TestSpreadDialer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	from := make(chan string, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			from <- host
			c.Close()
		}
	}()
	ips, _ := ParseLocalIPs("127.0.0.2-127.0.0.3")
	d := NewSpreadDialer(ips, time.Second)
	var got []string
	for range 4 {
		c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		got = append(got, <-from)
	}
	if diff := cmp.Diff([]string{"127.0.0.3", "127.0.0.2", "127.0.0.3", "127.0.0.2"}, got); diff != "" {
		t.Errorf("source addresses (-want +got):\n%s", diff)
	}
}
