package auth

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

const (
	devSecretFile  = "dev-jwt-secret"
	devSecretBytes = 32
)

// DevSecret returns the dev-mode HS256 secret kept in
// <dataDir>/dev-jwt-secret, creating it on first use: 32 random bytes stored
// as hex, mode 0600, in a directory created with mode 0700 when missing.
//
// The file appears complete or not at all: it is written to a temporary file
// and then hard-linked into place, which, unlike a rename, fails when the name
// already exists. So when several processes (a server and `partyline token`)
// create it at once, exactly one wins and the others read the winner's secret;
// every caller returns the secret that is on disk.
func DevSecret(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, devSecretFile)
	secret, err := readDevSecret(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return secret, err
	}

	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("auth: dev secret: %w", err)
	}
	fresh := make([]byte, devSecretBytes)
	rand.Read(fresh) // never fails: crypto/rand crashes the program instead
	if err := writeNew(path, []byte(hex.EncodeToString(fresh)+"\n")); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process won the race; use its secret.
			return readDevSecret(path)
		}
		return nil, fmt.Errorf("auth: dev secret: %w", err)
	}
	return fresh, nil
}

// readDevSecret reads and decodes the secret at path. A missing file is
// reported with an error wrapping fs.ErrNotExist.
func readDevSecret(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: dev secret: %w", err)
	}
	secret, err := hex.DecodeString(string(bytes.TrimSpace(data)))
	if err != nil || len(secret) < devSecretBytes {
		return nil, fmt.Errorf("auth: dev secret: %s does not hold at least %d hex-encoded bytes; delete it to make a new one", path, devSecretBytes)
	}
	return secret, nil
}

// writeNew creates path holding data with mode 0600, or fails with an error
// wrapping fs.ErrExist when path already exists. Readers never see a partial
// file.
func writeNew(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	// After a successful link the data lives on under path, so the temporary
	// name always goes. Failing to remove it leaves a stray file, not a
	// wrong secret, so that error is dropped.
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Link(tmp.Name(), path)
}
