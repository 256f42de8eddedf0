package auth

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestDevSecretCreateAndReload(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "nested")

	first, err := DevSecret(dir)
	if err != nil {
		t.Fatalf("DevSecret (create): %v", err)
	}
	if got, want := len(first), devSecretBytes; got != want {
		t.Errorf("secret length = %d; want %d", got, want)
	}

	fi, err := os.Stat(filepath.Join(dir, devSecretFile))
	if err != nil {
		t.Fatalf("stat secret: %v", err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("secret file mode = %v; want %v", got, want)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatalf("stat dir: %v", err)
	}
	if got := di.Mode().Perm(); got&0o077 != 0 {
		t.Errorf("data dir mode = %v; want no group or other access", got)
	}

	second, err := DevSecret(dir)
	if err != nil {
		t.Fatalf("DevSecret (reload): %v", err)
	}
	if !bytes.Equal(first, second) {
		t.Errorf("reloaded secret differs from the created one")
	}
	assertOnlySecretFile(t, dir)

	// The secret must be usable as it is.
	if _, err := NewSigner(first, "", ""); err != nil {
		t.Errorf("NewSigner(dev secret): %v", err)
	}
	if _, err := NewVerifier(Options{Secret: first}); err != nil {
		t.Errorf("NewVerifier(dev secret): %v", err)
	}
}

func TestDevSecretDistinctDirs(t *testing.T) {
	a, err := DevSecret(t.TempDir())
	if err != nil {
		t.Fatalf("DevSecret: %v", err)
	}
	b, err := DevSecret(t.TempDir())
	if err != nil {
		t.Fatalf("DevSecret: %v", err)
	}
	if bytes.Equal(a, b) {
		t.Errorf("two data dirs got the same secret")
	}
}

func TestDevSecretConcurrent(t *testing.T) {
	for round := range 20 {
		dir := filepath.Join(t.TempDir(), "data")
		const callers = 8
		secrets := make([][]byte, callers)
		errs := make([]error, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() { secrets[i], errs[i] = DevSecret(dir) })
		}
		wg.Wait()
		for i := range callers {
			if errs[i] != nil {
				t.Fatalf("round %d: caller %d: %v", round, i, errs[i])
			}
			if !bytes.Equal(secrets[i], secrets[0]) {
				t.Fatalf("round %d: caller %d got a different secret", round, i)
			}
		}
		onDisk, err := DevSecret(dir)
		if err != nil {
			t.Fatalf("round %d: reload: %v", round, err)
		}
		if !bytes.Equal(onDisk, secrets[0]) {
			t.Fatalf("round %d: callers got a secret that is not the one on disk", round)
		}
		assertOnlySecretFile(t, dir)
	}
}

func TestDevSecretCorrupt(t *testing.T) {
	tests := []struct {
		name    string
		content string
	}{
		{"empty", ""},
		{"not hex", "zz\n"},
		{"too short", "00112233\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, devSecretFile)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if s, err := DevSecret(dir); err == nil {
				t.Fatalf("DevSecret = %x, nil; want an error", s)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.content {
				t.Errorf("DevSecret changed a corrupt file to %q", got)
			}
		})
	}
}

func TestDevSecretUnusableDir(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := DevSecret(notDir); err == nil {
		t.Fatalf("DevSecret(a regular file) = %x, nil; want an error", s)
	}
}

// assertOnlySecretFile checks that no temporary file was left behind.
func assertOnlySecretFile(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != devSecretFile {
		t.Errorf("data dir holds %q; want only %q", names, devSecretFile)
	}
}
