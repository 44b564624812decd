package sip

import (
	"io"
	"log/slog"
	"os"
	"testing"

	sipgosip "github.com/emiago/sipgo/sip"
	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind.
//
// sipgo v1.7.3 starts no package-level background goroutines: its transport readers
// stop when Server.Serve closes the listeners and UserAgent.Close clears the connection
// pools, and its transaction timers are time.AfterFunc (stopped on terminate). So no
// IgnoreTopFunction is needed for sipgo itself. The only ignore is the read loop of
// the standard library's internal/poll on Windows, which we do not run on; none here.
func TestMain(m *testing.M) {
	// sipgo's transports and transaction layer log through its default logger, which is
	// captured when each UserAgent is created; keep test output quiet unless asked.
	if os.Getenv("HOTLINE_SIP_TEST_LOG") == "" {
		sipgosip.SetDefaultLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	}
	goleak.VerifyTestMain(m)
}
