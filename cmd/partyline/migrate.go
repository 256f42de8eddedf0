package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/partyline/partyline/internal/server"
)

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
	st, name, err := server.OpenStoreNoMigrate(ctx, cfg.DatabaseURL, cfg.DataDir)
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
