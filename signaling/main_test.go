package signaling_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when goroutines outlive its tests: every
// PeerConnection, room actor, writer and reader must be gone once the
// rooms close and Run returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
