package main

import "fmt"

// errorf returns an error with the message msg that wraps kind, one of the
// partyline sentinel errors.
func errorf(kind error, msg string) error { return fmt.Errorf("%s: %w", msg, kind) }
