package client

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: the
// client's run goroutine, a drain timer or a peer handler.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
