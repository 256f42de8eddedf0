package loadtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/goleak"

	"github.com/partyline/partyline/internal/auth"
	"github.com/partyline/partyline/realtime"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testSecret = "loadtest-secret-0123456789abcdef0123"
	testAPIKey = "test-api-key"
)

// jwtAuth verifies hello tokens the way the server binary does.
type jwtAuth struct{ v *auth.Verifier }

func (a jwtAuth) Authenticate(_ context.Context, token string) (string, time.Time, error) {
	c, err := a.v.Verify(token)
	if err != nil {
		return "", time.Time{}, err
	}
	return c.UserID, c.ExpiresAt, nil
}

// testServer is a gateway node on httptest listeners: the main one with
// /v1/ws and the server API, and an admin one with /metrics and the pprof
// heap profile, as the server binary lays them out.
type testServer struct {
	main, admin *httptest.Server
	client      *http.Client // for the admin listener; its idle connections close at cleanup
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	v, err := auth.NewVerifier(auth.Options{Secret: []byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	node, err := realtime.New(realtime.Options{
		Auth:            jwtAuth{v},
		APIKey:          testAPIKey,
		MaxConnsPerUser: 100,
		Registerer:      reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- node.Run(ctx) }()
	<-node.Started()

	mux := http.NewServeMux()
	mux.Handle("/v1/ws", node)
	mux.Handle("/v1/server/", http.StripPrefix("/v1/server", node.ServerAPI()))
	adminMux := http.NewServeMux()
	adminMux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	adminMux.Handle("/debug/pprof/heap", pprof.Handler("heap"))

	s := &testServer{
		main:   httptest.NewServer(mux),
		admin:  httptest.NewServer(adminMux),
		client: &http.Client{Transport: &http.Transport{}},
	}
	t.Cleanup(func() {
		s.client.CloseIdleConnections()
		s.main.Close()
		s.admin.Close()
		cancel()
		if err := <-runDone; err != nil {
			t.Errorf("node.Run: %v", err)
		}
	})
	return s
}

func (s *testServer) dial() DialOptions {
	return DialOptions{
		URL:        "ws" + s.main.URL[len("http"):] + "/v1/ws",
		JWTSecret:  testSecret,
		UserPrefix: "t_",
	}
}

func (s *testServer) observer() Server {
	return Server{AdminURL: s.admin.URL, Client: s.client}
}
