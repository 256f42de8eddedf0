// Command partyline is the partyline server: the realtime gateway, the REST
// API and the voice SFU in one binary. See README.md for how to run it.
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "partyline: %v\n", err)
		os.Exit(1)
	}
}
