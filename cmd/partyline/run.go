package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

const usage = `partyline: the real-time backend for gaming communities

Usage:
  partyline [serve] [flags]            run the server (the default)
  partyline migrate [flags]            apply the database migrations and exit
  partyline token --user NAME [--ttl 24h]
                                       print a token signed with the configured secret
  partyline feed-eval [--seed N] [--json]
                                       evaluate the feed's ranking model on a synthetic world
  partyline version                    print the version

Run "partyline serve -h" for every setting. Each flag is also a PARTYLINE_*
environment variable; the flag wins.
`

// run is the whole program: main only calls it. args holds the program name
// first, as os.Args does. It returns when the command is done, or for serve
// when ctx is cancelled or SIGINT/SIGTERM arrives and shutdown has finished.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd, rest := "serve", []string{}
	if len(args) > 1 {
		rest = args[1:]
		if !strings.HasPrefix(rest[0], "-") {
			cmd, rest = rest[0], rest[1:]
		}
	}
	switch cmd {
	case "serve":
		return serve(ctx, rest, getenv, stderr)
	case "migrate":
		return migrate(ctx, rest, getenv, stdout, stderr)
	case "token":
		return token(rest, getenv, stdout, stderr)
	case "feed-eval":
		return feedEval(rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "partyline", buildVersion())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// parseFlags parses args into fs, treating -h as success.
func parseFlags(fs *flag.FlagSet, args []string) (help bool, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return false, err
	}
	if fs.NArg() > 0 {
		return false, fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return false, nil
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " " + s.Value[:12]
			}
		}
		return strings.TrimSpace(v)
	}
	return "(devel)"
}

func randomSuffix() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
