package loadtest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/partyline/partyline/internal/server"
	"github.com/partyline/partyline/internal/server/servertest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testSecret = "loadtest-secret-0123456789abcdef0123"
	testAPIKey = "test-api-key"
)

// testServer is a whole server on httptest listeners: the main one and
// an admin one with /metrics and the pprof profiles, as the server binary
// lays them out.
type testServer struct {
	main   *servertest.Server
	admin  *httptest.Server
	client *http.Client // for the admin listener; its idle connections close at cleanup
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	srv := servertest.Start(t, server.Options{
		JWTSecret:       testSecret,
		APIKey:          testAPIKey,
		MaxConnsPerUser: 100,
	})
	s := &testServer{
		main:   srv,
		admin:  httptest.NewServer(srv.AdminHandler()),
		client: &http.Client{Transport: &http.Transport{}},
	}
	t.Cleanup(func() {
		s.client.CloseIdleConnections()
		s.admin.Close()
	})
	return s
}

func (s *testServer) dial() DialOptions {
	return DialOptions{
		URL:        s.main.WS,
		JWTSecret:  testSecret,
		UserPrefix: "t_",
	}
}

func (s *testServer) observer() Server {
	return Server{AdminURL: s.admin.URL, Client: s.client}
}
