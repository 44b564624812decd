package call

import (
	"testing"
	"time"

	"github.com/hotline12345/hotline/sip"
)

// The ACD offers the same agent again while the phone is still taking the CANCEL of the
// last ring: the new offer rings, is answered and bridged; the old ring's end is ignored.
func TestReofferWhileCancelledRingWindsDown(t *testing.T) {
	off := false
	h := newHarness(t, func(c *Config) {
		c.ACDQueues[0].AutoPause = &off
		c.ACDQueues[0].RetryDelay = time.Second
	})
	slow := make(chan struct{})
	h.phones.slow = slow
	h.ready("1001")
	leg := newLeg("c1")
	done := h.dial(leg)
	first := h.waitRing("1001")
	h.clock.Advance(15 * time.Second) // ring timeout: CANCEL, which the phone is slow to take
	eventually(t, "first ring cancelled", func() bool { return first.ctx.Err() != nil })
	h.clock.Advance(time.Second) // the agent's rest: offered again
	eventually(t, "rung again", func() bool { return len(h.phones.rung()) == 2 })
	h.answer(h.waitRing("1001"), "a2")
	h.waitBridged(0)
	close(slow)
	leg.end(sip.SideCaller, "BYE", 0)
	rec := h.record(done)
	want(t, "agent", rec.Agent, "1001")
	want(t, "ring attempts", rec.RingAttempts, 2)
}
