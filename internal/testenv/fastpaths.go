package testenv

import "os"

// FastPaths reports whether tests should run with the fast paths under the
// libraries on (the default). CI sets PARTYLINE_TEST_FAST_PATHS=off for one
// run of the realtime and voice suites, so a library upgrade that breaks a
// fast path's assumption fails a test.
func FastPaths() bool { return os.Getenv("PARTYLINE_TEST_FAST_PATHS") != "off" }
