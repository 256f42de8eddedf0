package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/feed"
	"github.com/partyline/partyline/internal/auth"
	"github.com/partyline/partyline/store/postgres"
	"github.com/partyline/partyline/store/sqlite"
)

// Store is what the server needs from a store: every domain's Store.
// store/postgres and store/sqlite implement it.
type Store interface {
	chat.Store
	clips.Store
	feed.Store
	auth.UserStore
	Migrate(ctx context.Context) error
	Ping(ctx context.Context) error
	Close() error
}

// OpenStore opens PostgreSQL when databaseURL is set and SQLite in dataDir
// otherwise, and applies the migrations.
func OpenStore(ctx context.Context, databaseURL, dataDir string, logger *slog.Logger) (Store, error) {
	st, name, err := OpenStoreNoMigrate(ctx, databaseURL, dataDir)
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("migrate %s: %w", name, err)
	}
	logger.Debug("migrations applied", "store", name)
	return st, nil
}

// OpenStoreNoMigrate opens the store as OpenStore does, without migrating
// it, and names it.
func OpenStoreNoMigrate(ctx context.Context, databaseURL, dataDir string) (Store, string, error) {
	if databaseURL != "" {
		db, err := postgres.Open(ctx, postgres.Options{URL: databaseURL})
		if err != nil {
			return nil, "", fmt.Errorf("open PostgreSQL: %w", err)
		}
		return pgStore{db}, "postgresql", nil
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, "", fmt.Errorf("data dir: %w", err)
	}
	path := filepath.Join(dataDir, "partyline.db")
	db, err := sqlite.Open(ctx, sqlite.Options{Path: path})
	if err != nil {
		return nil, "", fmt.Errorf("open SQLite %s: %w", path, err)
	}
	return db, "sqlite (" + path + ")", nil
}

// StoreName names the store New opens for these settings, for the startup
// log.
func StoreName(databaseURL, dataDir string) string {
	if databaseURL != "" {
		return "postgresql"
	}
	return "sqlite (" + filepath.Join(dataDir, "partyline.db") + ")"
}

// pgStore adapts the pool's Close, which reports nothing, to Store.
type pgStore struct{ *postgres.DB }

func (s pgStore) Close() error { s.DB.Close(); return nil }
