package feed_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"

	"github.com/partyline/partyline/feed"
	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/store/postgres"
)

// Benchmark world: 10,000 users, 100,000 clips by 2,000 creators over 30
// days, 1,000,000 engagement events over the last 3 days, every user
// following 20 creators and "heavy" following 1,000.
const (
	benchUsers    = 10000
	benchCreators = 2000
	benchClips    = 100000
	benchEvents   = 1000000
	benchGames    = 20
)

// seedBench fills a fresh PostgreSQL database with COPY.
func seedBench(b *testing.B, url string) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	rng := rand.New(rand.NewPCG(42, 43))
	now := time.Now().UTC().Truncate(time.Millisecond)
	user := func(i int) string { return fmt.Sprintf("u%05d", i) }
	copyRows := func(table string, cols []string, n int, row func(i int) []any) {
		_, err := conn.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromFunc(func() func() ([]any, error) {
			i := 0
			return func() ([]any, error) {
				if i == n {
					return nil, nil
				}
				i++
				return row(i - 1), nil
			}
		}()))
		if err != nil {
			b.Fatalf("copy %s: %v", table, err)
		}
	}
	copyRows("users", []string{"id", "created_at"}, benchUsers+1, func(i int) []any {
		if i == benchUsers {
			return []any{"heavy", now}
		}
		return []any{user(i), now}
	})
	type edge struct{ a, b string }
	var edges []edge
	seen := map[edge]bool{}
	for u := range benchUsers {
		for range 20 {
			e := edge{user(u), user(rng.IntN(benchCreators))}
			if e.a != e.b && !seen[e] {
				seen[e] = true
				edges = append(edges, e)
			}
		}
	}
	for c := range 1000 {
		edges = append(edges, edge{"heavy", user(c)})
	}
	copyRows("follows", []string{"follower", "followee", "created_at"}, len(edges), func(i int) []any {
		return []any{edges[i].a, edges[i].b, now.Add(-time.Duration(i) * time.Millisecond)}
	})
	clipAt := func(i int) time.Time { return now.Add(-30 * 24 * time.Hour * time.Duration(benchClips-i) / benchClips) }
	copyRows("clips", []string{"id", "owner", "title", "game", "visibility", "status", "duration_ms", "created_at", "updated_at"},
		benchClips, func(i int) []any {
			vis := "public"
			switch i % 20 {
			case 0:
				vis = "private"
			case 1:
				vis = "unlisted"
			}
			at := clipAt(i)
			return []any{fmt.Sprintf("c_%06d", i), user(rng.IntN(benchCreators)), "clip", fmt.Sprintf("game-%02d", rng.IntN(benchGames)),
				vis, "ready", int64(10000 + rng.IntN(50000)), at, at}
		})
	kinds := []string{"view", "view", "view", "skip", "like", "share"}
	copyRows("clip_events", []string{"clip_id", "user_id", "kind", "watched_ms", "at"}, benchEvents, func(i int) []any {
		// Recent clips get most of the engagement.
		c := benchClips - 1 - int(float64(benchClips/3)*rng.ExpFloat64()/3)
		c = max(0, min(benchClips-1, c))
		return []any{fmt.Sprintf("c_%06d", c), user(rng.IntN(benchUsers)), kinds[rng.IntN(len(kinds))],
			int64(rng.IntN(60000)), now.Add(-time.Duration(rng.Int64N(int64(72 * time.Hour))))}
	})
	// As autovacuum would after a bulk load: statistics and the visibility
	// map that index-only scans need.
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		b.Fatal(err)
	}
}

// paced sends n GETs at rate per second from a few workers, as user(i),
// and reports the p50 and p99 latency in milliseconds.
func paced(b *testing.B, srv *httptest.Server, n, rate int, path string, user func(i int) string) {
	b.Helper()
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	sem := make(chan struct{}, 16)
	b.ResetTimer()
	for i := range n {
		<-tick.C
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			req, _ := http.NewRequest("GET", srv.URL+path, nil)
			req.Header.Set("Authorization", "Bearer "+user(i))
			start := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
			lat[i] = time.Since(start)
			if resp.StatusCode != http.StatusOK {
				b.Errorf("GET %s: %d", path, resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[n/2]), "p50-ms")
	b.ReportMetric(ms(lat[n*99/100]), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkFeedPostgres measures GET /v1/feed/for-you and
// GET /v1/feed/following against PostgreSQL at 200 requests per second.
// Run it with a fixed count, for example:
//
//	go test -run '^$' -bench BenchmarkFeedPostgres -benchtime 2000x ./feed
func BenchmarkFeedPostgres(b *testing.B) {
	// PARTYLINE_FEED_BENCH_URL names a database to seed once and keep, so
	// reruns skip the seeding; otherwise a fresh one is made and dropped.
	url := os.Getenv("PARTYLINE_FEED_BENCH_URL")
	if url == "" {
		url = testenv.PostgresURL(b)
	}
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Options{URL: url, MaxConns: 16})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if p, err := db.Profile(ctx, "heavy", ""); err != nil || p.Following == 0 {
		seedBench(b, url)
		b.Logf("seeded in %v", time.Since(start))
	}
	f, err := feed.New(feed.Options{Store: db})
	if err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	r := chi.NewRouter()
	r.Route("/v1", func(r chi.Router) {
		r.Use(bearerUser)
		f.MountUsers(r)
		r.Mount("/feed", f.Routes())
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	// Wait for Run's first trending board.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/feed/trending", nil)
		req.Header.Set("Authorization", "Bearer u00001")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			var p page
			_ = decodeBody(resp, &p)
			if len(p.Items) > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("no trending board after 2 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Logf("ready in %v", time.Since(start))
	users := func(i int) string { return fmt.Sprintf("u%05d", (i*7919)%benchUsers) }
	b.Run("ForYou", func(b *testing.B) {
		paced(b, srv, max(b.N, 100), 200, "/v1/feed/for-you", users)
	})
	b.Run("Following1000", func(b *testing.B) {
		paced(b, srv, max(b.N, 100), 200, "/v1/feed/following", func(int) string { return "heavy" })
	})
}

// BenchmarkFeedEval reports the offline evaluation at the default size.
//
//	go test -run '^$' -bench BenchmarkFeedEval -benchtime 1x ./feed
func BenchmarkFeedEval(b *testing.B) {
	for range b.N {
		res, err := feed.Evaluate(feed.EvalOptions{Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(res.Model.AUC, "model-auc")
		b.ReportMetric(res.Model.NDCG10, "model-ndcg10")
		b.ReportMetric(res.Baseline.AUC, "baseline-auc")
		b.ReportMetric(res.Baseline.NDCG10, "baseline-ndcg10")
		b.ReportMetric(float64(res.Events), "events")
	}
}
