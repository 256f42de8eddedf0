package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/partyline/partyline/internal/auth"
)

// token prints a token for --user, signed like the server verifies it: with
// PARTYLINE_JWT_SECRET, or else with the dev secret in the data dir.
func token(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("partyline token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	if err := cfg.registerFlags(fs, getenv, "data-dir", "jwt-secret", "jwt-public-key", "jwt-issuer", "jwt-audience"); err != nil {
		return err
	}
	user := fs.String("user", "", "the user id to put in sub (required)")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *user == "" {
		return errors.New("token: --user is required")
	}
	if *ttl <= 0 {
		return fmt.Errorf("token: --ttl must be positive, got %v", *ttl)
	}
	if cfg.JWTPublicKey != "" && cfg.JWTSecret == "" {
		return errors.New("token: a server configured with --jwt-public-key verifies tokens it cannot sign; mint them with your auth service")
	}
	secret := []byte(cfg.JWTSecret)
	if cfg.JWTSecret == "" {
		var err error
		if secret, err = auth.DevSecret(cfg.DataDir); err != nil {
			return fmt.Errorf("token: dev secret: %w", err)
		}
	}
	signer, err := auth.NewSigner(secret, cfg.JWTIssuer, cfg.JWTAudience)
	if err != nil {
		return fmt.Errorf("token: jwt: %w", err)
	}
	tok, _, err := signer.Sign(*user, *ttl)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}
