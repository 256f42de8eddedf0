package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/feed"
	"github.com/partyline/partyline/internal/auth"
	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/store/postgres"
	"github.com/partyline/partyline/store/sqlite"
)

// appStore is what the server needs from a store: every domain's Store.
type appStore interface {
	chat.Store
	clips.Store
	feed.Store
	auth.UserStore
	Migrate(ctx context.Context) error
	Ping(ctx context.Context) error
	Close() error
}

// openStore opens PostgreSQL when --database-url is set and SQLite in the
// data dir otherwise, and applies the migrations.
func openStore(ctx context.Context, cfg config, logger *slog.Logger) (appStore, string, error) {
	st, name, err := openStoreNoMigrate(ctx, cfg)
	if err != nil {
		return nil, "", err
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, "", fmt.Errorf("migrate %s: %w", name, err)
	}
	logger.Debug("migrations applied", "store", name)
	return st, name, nil
}

func openStoreNoMigrate(ctx context.Context, cfg config) (appStore, string, error) {
	if cfg.DatabaseURL != "" {
		db, err := postgres.Open(ctx, postgres.Options{URL: cfg.DatabaseURL})
		if err != nil {
			return nil, "", fmt.Errorf("open PostgreSQL: %w", err)
		}
		return pgStore{db}, "postgresql", nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, "", fmt.Errorf("data dir: %w", err)
	}
	path := filepath.Join(cfg.DataDir, "partyline.db")
	db, err := sqlite.Open(ctx, sqlite.Options{Path: path})
	if err != nil {
		return nil, "", fmt.Errorf("open SQLite %s: %w", path, err)
	}
	return db, "sqlite (" + path + ")", nil
}

// pgStore adapts the pool's Close, which reports nothing, to appStore.
type pgStore struct{ *postgres.DB }

func (s pgStore) Close() error { s.DB.Close(); return nil }

// migrate applies the migrations and exits.
func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("partyline migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	if err := cfg.registerFlags(fs, getenv, "data-dir", "database-url"); err != nil {
		return err
	}
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	st, name, err := openStoreNoMigrate(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", name, err)
	}
	fmt.Fprintf(stdout, "migrations applied to %s\n", name)
	return nil
}
