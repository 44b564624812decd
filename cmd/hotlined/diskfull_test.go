package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/cdr"

	"github.com/hotline12345/hotline/internal/fulldisk"
)

// The data dir's disk fills up (records store and journal both on it): calls
// go on, their records wait in memory up to cdr_spill_limit, then new calls
// get 503 with Retry-After and /healthz says why; once space returns every
// answered call's record is written and calls are taken again.
func TestDiskFullThenSpaceReturns(t *testing.T) {
	t.Parallel()
	data := fulldisk.Mount(t, 16<<20) // before startServer: unmounted after it stops
	s := startServer(t, testConfig(t, "# cdr_spill_limit: 20000", "cdr_spill_limit: 3"), func(o *options) { o.DataDir = data })
	health := "http://" + s.httpAddr() + "/healthz"
	free := fulldisk.Fill(t, data)

	// Calls are taken, their records and agent events kept in memory, until
	// cdr_spill_limit of them wait: then a call is refused with 503.
	answered := 0
	for {
		if answered == 30 {
			t.Fatalf("still taking calls after %d with a full disk: writer %+v", answered, s.writer.Stats())
		}
		res := runSIPp(t, s.sipAddr(), "uac_rfc2833.xml")
		if !res.ok {
			if s.writer.Accepting() != nil && strings.Contains(res.output, "SIP/2.0 503 Service Unavailable") {
				break
			}
			t.Fatalf("call %d with a full disk failed:\n%s", answered+1, res.output)
		}
		answered++
	}
	if answered == 0 {
		t.Fatalf("no call taken with a full disk: records should wait in memory first")
	}
	waitStatus(t, health, 503)
	if res := runSIPp(t, s.sipAddr(), "uac_503.xml"); !res.ok {
		t.Fatalf("a call while records cannot be written did not get 503 with Retry-After:\n%s", res.output)
	}

	free()
	waitStatus(t, health, 200)
	// Every answered call's record is written. The two refused calls' records (never
	// answered) are written too unless more than twice cdr_spill_limit records and events
	// waited: then they were dropped, by design, and said so in the log.
	answeredRecords := func() (n, all int) {
		recs, err := s.store.List(context.Background(), cdr.Filter{})
		if err != nil {
			t.Fatalf("list records: %v", err)
		}
		for _, r := range recs {
			if !r.Answer.IsZero() { // (the menu digit itself is not this test's business)
				n++
			}
		}
		return n, len(recs)
	}
	n, all := answeredRecords()
	for deadline := time.Now().Add(20 * time.Second); n < answered && time.Now().Before(deadline); n, all = answeredRecords() {
		time.Sleep(50 * time.Millisecond)
	}
	if n != answered || all > answered+2 {
		t.Fatalf("%d answered calls' records (of %d) after space returned, want %d (and at most 2 refused)", n, all, answered)
	}
	if res := runSIPp(t, s.sipAddr(), "uac_rfc2833.xml"); !res.ok {
		t.Fatalf("a call after space returned failed:\n%s", res.output)
	}
	s.records(t, all+1)
}
