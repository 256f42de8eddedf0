package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The environment variables that point tests at real services, and the
// one that turns the fast paths off.
const (
	DatabaseURLEnv = "PARTYLINE_TEST_DATABASE_URL"
	RedisURLEnv    = "PARTYLINE_TEST_REDIS_URL"
	FastPathsEnv   = "PARTYLINE_TEST_FAST_PATHS"
)

// FastPaths reports whether tests run the code that works beneath a
// library for speed (WebSocket framing, SRTP keys): false when
// PARTYLINE_TEST_FAST_PATHS is "off", true otherwise. Harnesses pass it to
// the options that switch those paths, so one suite runs either way.
func FastPaths() bool { return os.Getenv(FastPathsEnv) != "off" }

// PostgresURL returns the URL of a fresh, empty PostgreSQL database made for
// this test and dropped when it ends. It skips the test when
// PARTYLINE_TEST_DATABASE_URL is unset, and fails it when the server is
// unreachable.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv(DatabaseURLEnv)
	if base == "" {
		tb.Skipf("skipping: %s is not set (PostgreSQL tests need it)", DatabaseURLEnv)
	}
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("testenv: parse %s: %v", DatabaseURLEnv, err)
	}
	name := "partyline_t_" + randomHex(8)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("testenv: connect to PostgreSQL at %s: %v", redact(u), err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("testenv: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("testenv: drop database %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("testenv: drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// RedisURL returns PARTYLINE_TEST_REDIS_URL, skipping the test when it is
// unset. Tests isolate themselves in Redis with KeyPrefix.
func RedisURL(tb testing.TB) string {
	tb.Helper()
	v := os.Getenv(RedisURLEnv)
	if v == "" {
		tb.Skipf("skipping: %s is not set (Redis tests need it)", RedisURLEnv)
	}
	return v
}

// KeyPrefix returns a prefix unique to this test run, for Redis keys and
// channels.
func KeyPrefix() string { return "pltest:" + randomHex(6) + ":" }

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("testenv: random: %v", err))
	}
	return hex.EncodeToString(b)
}

func redact(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}
