package main

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/hotline12345/hotline/cdr"
	"github.com/hotline12345/hotline/loadtest/phone"
)

// 话务"一次一评" end to end: the agent hangs up; the citizen hears the rating question at
// once, presses a key (RFC 4733), hears the thanks and is hung up by the server; the record
// carries the rating and the agent's RATING event names the agent. A citizen who hangs up
// during the question is not rated.
func TestPostCallRatingEndToEnd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, key, want string
	}{
		{"satisfied", "1", cdr.SatisfactionSatisfied},
		{"dissatisfied", "3", cdr.SatisfactionDissatisfied},
		{"hangs up", "", cdr.SatisfactionNotRated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, acdTestConfig(t))
			ag := newAgent(t, s, "1001", phone.Config{}, answerAlways)
			citizen, agentCall := connected(t, s, ag)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := agentCall.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			bye := time.Now()
			// DESIGN.md: the question starts within 1 s of the agent's BYE.
			qctx, qcancel := context.WithDeadline(ctx, bye.Add(time.Second))
			err := citizen.WaitAudio(qctx, -30, 100*time.Millisecond)
			qcancel()
			if err != nil {
				t.Fatalf("no rating question within 1 s of the agent's BYE: %v (audio %+v)", err, citizen.Audio())
			}
			t.Logf("rating question heard %v after the agent's BYE", time.Since(bye).Round(time.Millisecond))
			if tc.key != "" {
				citizen.SendDTMF(tc.key, 100*time.Millisecond)
				select {
				case <-citizen.Done(): // the server hangs up after the thanks
				case <-time.After(20 * time.Second):
					t.Fatal("the server did not hang up after the rating")
				}
			} else {
				citizen.Hangup(ctx)
			}
			rec := s.records(t, 1)[0]
			if rec.Satisfaction != tc.want || rec.Disposition != cdr.DispositionAnswered || rec.HangupSide != "agent" || rec.Agent != "1001" {
				t.Fatalf("record %+v: want %s, answered, ended by the agent", rec, tc.want)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				var evs struct{ Events []cdr.AgentEvent }
				json.Unmarshal([]byte(httpGet(t, "http://"+s.httpAddr()+"/api/v1/events?event=RATING", http.StatusOK)), &evs)
				if len(evs.Events) == 1 {
					if e := evs.Events[0]; e.AgentID != "1001" || e.Queue != "consult" || e.Data1 != tc.want || e.CallID != rec.ID {
						t.Fatalf("RATING event %+v", e)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("RATING events %+v, want one", evs.Events)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
