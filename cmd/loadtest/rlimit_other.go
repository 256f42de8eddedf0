//go:build !unix

package main

// raiseOpenFiles has no open-file limit to raise here.
func raiseOpenFiles() (files, hard uint64, ok bool) { return 0, 0, false }
