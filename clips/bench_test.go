package clips_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"

	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/internal/auth"
	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/store/postgres"
	"github.com/partyline/partyline/store/sqlite"
)

// Benchmark sizes: 100,000 clips of 1,000 creators.
const (
	benchClips    = 100_000
	benchCreators = 1_000
)

// seedPostgres fills clips with COPY: benchCreators users with
// benchClips/benchCreators ready public clips each. It returns a clip id
// and a creator id to read.
func seedPostgres(b *testing.B, url string) (clipIDs []string, creators []string) {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	now := time.Now().UTC()
	users := make([][]any, benchCreators)
	for i := range users {
		creators = append(creators, fmt.Sprintf("u_%04d", i))
		users[i] = []any{creators[i], now}
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"id", "created_at"}, pgx.CopyFromRows(users)); err != nil {
		b.Fatalf("copy users: %v", err)
	}
	rows := make([][]any, 0, benchClips)
	for i := range benchClips {
		at := now.Add(-time.Duration(benchClips-i) * time.Second)
		id := "c_" + ulid.MustNew(ulid.Timestamp(at), ulid.DefaultEntropy()).String()
		clipIDs = append(clipIDs, id)
		rows = append(rows, []any{id, creators[i%benchCreators], "ace " + id, "valorant", []string{"clutch"}, "public", "ready",
			int64(20 << 20), "video/mp4", "ab12", int64(30000), 1920, 1080, "clips/" + id + "/media", at, at})
	}
	cols := []string{"id", "owner", "title", "game", "tags", "visibility", "status", "size_bytes", "content_type", "sha256",
		"duration_ms", "width", "height", "media_key", "created_at", "updated_at"}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"clips"}, cols, pgx.CopyFromRows(rows)); err != nil {
		b.Fatalf("copy clips: %v", err)
	}
	if _, err := conn.Exec(ctx, "ANALYZE clips"); err != nil {
		b.Fatal(err)
	}
	return clipIDs, creators
}

// pgServer is the clips read API over a seeded PostgreSQL.
func pgServer(b *testing.B) (srv *httptest.Server, clipIDs, creators []string) {
	b.Helper()
	url := testenv.PostgresURL(b)
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Options{URL: url, MaxConns: 16})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(db.Close)
	if err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	clipIDs, creators = seedPostgres(b, url)
	svc, _ := benchService(b, db, b.TempDir())
	r := chi.NewRouter()
	r.Mount("/v1/clips", svc.Routes())
	r.Get("/v1/users/{id}/clips", svc.HandleUserClips)
	srv = httptest.NewServer(r)
	b.Cleanup(srv.Close)
	return srv, clipIDs, creators
}

// benchService is a quiet clips service over db with its blobs in dir.
func benchService(b *testing.B, db clips.Store, dir string) (*clips.Service, *clips.Dir) {
	b.Helper()
	blobs, err := clips.NewDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	svc, err := clips.New(clips.Options{Store: db, Blobs: blobs, NoMediaTools: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	return svc, blobs
}

// paced sends b.N GETs at rate per second, open loop (each on schedule,
// whatever the ones before are doing), and reports req/s and latency
// percentiles.
func paced(b *testing.B, srv *httptest.Server, rate int, path func(i int) string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	b.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var (
		mu     sync.Mutex
		hist   = hdrhistogram.New(1, 10_000_000, 3) // microseconds
		failed int
		wg     sync.WaitGroup
	)
	every := time.Second / time.Duration(rate)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if d := time.Until(start.Add(time.Duration(i) * every)); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			res, err := hc.Get(srv.URL + path(i))
			ok := err == nil && res.StatusCode == 200
			if err == nil {
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
			lat := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			if !ok {
				failed++
			}
			_ = hist.RecordValue(lat.Microseconds())
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if failed > 0 {
		b.Errorf("%d of %d requests failed", failed, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(hist.ValueAtQuantile(50))/1000, "p50_ms")
	b.ReportMetric(float64(hist.ValueAtQuantile(99))/1000, "p99_ms")
	b.ReportMetric(float64(hist.Max())/1000, "max_ms")
}

// BenchmarkGetClipPostgres: GET /v1/clips/{id} over 100,000 clips in
// PostgreSQL at 1,000 requests a second. Run with -benchtime=5000x for 5 s.
func BenchmarkGetClipPostgres(b *testing.B) {
	srv, ids, _ := pgServer(b)
	paced(b, srv, 1000, func(i int) string { return "/v1/clips/" + ids[(i*7919)%len(ids)] })
}

// BenchmarkUserClipsPostgres: GET /v1/users/{id}/clips (first page of 50,
// anonymous: public ready clips) at 1,000 requests a second.
func BenchmarkUserClipsPostgres(b *testing.B) {
	srv, _, creators := pgServer(b)
	paced(b, srv, 1000, func(i int) string { return "/v1/users/" + creators[(i*31)%len(creators)] + "/clips" })
}

// BenchmarkUserClipsSmallPagePostgres is BenchmarkUserClipsPostgres with
// ?limit=10, the size of an overlay's profile strip.
func BenchmarkUserClipsSmallPagePostgres(b *testing.B) {
	srv, _, creators := pgServer(b)
	paced(b, srv, 1000, func(i int) string { return "/v1/users/" + creators[(i*31)%len(creators)] + "/clips?limit=10" })
}

// BenchmarkUpload100MiB: PUT /v1/clips/{id}/media of a 100 MiB file to the
// local-disk Blobs (sniffed, hashed, fsynced, renamed).
func BenchmarkUpload100MiB(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	db, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(dir, "bench.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := db.EnsureUser(ctx, "ada"); err != nil {
		b.Fatal(err)
	}
	svc, blobs := benchService(b, db, filepath.Join(dir, "blobs"))
	r := chi.NewRouter()
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, _ := db.GetUser(r.Context(), "ada")
			next.ServeHTTP(w, r.WithContext(withUser(r.Context(), u.ID, u.CreatedAt)))
		})
	})
	r.Put("/v1/clips/{id}/media", svc.HandleUpload)
	srv := httptest.NewServer(r)
	defer srv.Close()
	media := fakeMP4(100 << 20)
	b.SetBytes(int64(len(media)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c := clips.Clip{ID: "c_" + ulid.Make().String(), Owner: "ada", Title: "t", Game: "g", Visibility: clips.Public, Status: clips.StatusUploading}
		if err := db.CreateClip(ctx, c); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := srv.Client().Do(mustRequest(b, srv.URL+"/v1/clips/"+c.ID+"/media", media))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatalf("upload: %d", res.StatusCode)
		}
		b.StopTimer()
		// Keep the disk from filling over many iterations.
		if got, err := db.GetClip(ctx, c.ID); err == nil {
			_ = blobs.Delete(ctx, got.MediaKey)
		}
		b.StartTimer()
	}
}

func mustRequest(b *testing.B, url string, body []byte) *http.Request {
	r, err := http.NewRequest("PUT", url, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	r.Header.Set("Content-Type", "video/mp4")
	return r
}

func withUser(ctx context.Context, id string, at time.Time) context.Context {
	return auth.WithUser(ctx, auth.User{ID: id, CreatedAt: at})
}
