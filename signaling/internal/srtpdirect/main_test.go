package srtpdirect

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a reader outlives its Conn.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
