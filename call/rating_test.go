package call

import (
	"slices"
	"testing"
	"time"

	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/sip"
)

func ratingOn(c *Config) {
	q := c.Queues["consult"]
	q.Rating = true
	c.Queues["consult"] = q
}

// talkThenAgentHangsUp connects a caller to 1001 and has the agent hang up.
func talkThenAgentHangsUp(t *testing.T, h *harness) (*fakeLeg, chan struct{}) {
	t.Helper()
	leg, ag, _, done := h.connected()
	h.clock.Advance(30 * time.Second)
	ag.end(sip.SideAgent, "BYE", 0)
	return leg, done
}

func TestPostCallRating(t *testing.T) {
	for _, tc := range []struct {
		name    string
		act     func(h *harness, leg *fakeLeg)
		want    string
		byeByUs bool
	}{
		{"satisfied", func(h *harness, leg *fakeLeg) { leg.digits <- '1' }, cdr.SatisfactionSatisfied, true},
		{"basically satisfied after a stray key", func(h *harness, leg *fakeLeg) { leg.digits <- '7'; leg.digits <- '2' },
			cdr.SatisfactionBasicallySatisfied, true},
		{"dissatisfied by RFC 4733", func(h *harness, leg *fakeLeg) { h.media.stream(0).digits <- '3' }, cdr.SatisfactionDissatisfied, true},
		{"no key in the window", func(h *harness, leg *fakeLeg) { h.clock.Advance(RatingWindow) }, cdr.SatisfactionNotRated, true},
		{"caller hangs up", func(h *harness, leg *fakeLeg) { leg.end(sip.SideCaller, "BYE", 0) }, cdr.SatisfactionNotRated, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, ratingOn)
			leg, done := talkThenAgentHangsUp(t, h)
			h.waitStage(StageRating)
			if p := h.media.stream(0).playedFlat(); !slices.Contains(p, "zh/"+PromptRate) {
				t.Fatalf("played %v: want the rating question", p)
			}
			tc.act(h, leg)
			rec := h.record(done)
			want(t, "satisfaction", rec.Satisfaction, tc.want)
			want(t, "disposition", rec.Disposition, cdr.DispositionAnswered)
			want(t, "side (the agent ended the conversation)", rec.HangupSide, sip.SideAgent)
			want(t, "talk", rec.Talk, 30*time.Second)
			want(t, "we hung up", leg.hungUpWith() != "", tc.byeByUs)
			r := h.recs.eventsOf(cdr.EventRating)
			if len(r) != 1 || r[0].AgentID != "1001" || r[0].Queue != "consult" || r[0].Data1 != tc.want || r[0].CallID != rec.ID {
				t.Errorf("RATING events %+v", r)
			}
			if tc.want != cdr.SatisfactionNotRated && !slices.Contains(h.media.stream(0).playedFlat(), "zh/"+PromptRateThanks) {
				t.Errorf("no thanks after the rating: played %v", h.media.stream(0).playedFlat())
			}
		})
	}
}

func TestNoRatingWhenOff(t *testing.T) {
	h := newHarness(t)
	leg, done := talkThenAgentHangsUp(t, h)
	rec := h.record(done)
	want(t, "satisfaction", rec.Satisfaction, "")
	want(t, "we hung up", leg.hungUpWith() != "", true)
	want(t, "RATING events", len(h.recs.eventsOf(cdr.EventRating)), 0)
}
