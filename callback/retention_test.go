package callback

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Only finished targets last changed before the cutoff are deleted; a
// pending target keeps its number however old it is.
func TestRetentionFinishedTargets(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, _ string) {
		ctx := context.Background()
		mustCreate(t, s, testCampaign("a", t0))
		mustAdd(t, s, "a", []Target{
			{CaseID: "done-old", Phone: "13900000001"}, {CaseID: "failed-old", Phone: "13900000002"},
			{CaseID: "pending-old", Phone: "13900000003"}, {CaseID: "done-new", Phone: "13900000004"},
			{CaseID: "human-old", Phone: "13900000005"},
		})
		cutoff := t0.AddDate(0, 0, 30)
		for _, u := range []struct {
			id, state string
			at        time.Time
		}{
			{"done-old", TargetDone, cutoff.Add(-time.Second)}, {"failed-old", TargetFailed, t0},
			{"pending-old", TargetPending, t0}, {"done-new", TargetDone, cutoff.Add(time.Second)},
			{"human-old", TargetHuman, t0},
		} {
			tg, err := s.Target(ctx, "a", u.id)
			if err != nil {
				t.Fatal(err)
			}
			tg.State, tg.Updated = u.state, u.at
			if u.state == TargetDone {
				tg.Outcome = OutcomeAnswered
			}
			if err := s.Update(ctx, tg, ""); err != nil {
				t.Fatal(err)
			}
		}
		tables := RetentionTables(s)
		if len(tables) != 1 || tables[0].Name != "campaign_targets" {
			t.Fatalf("tables %+v", tables)
		}
		total := int64(0)
		for {
			n, err := tables[0].Purge(ctx, cutoff, 1)
			if err != nil {
				t.Fatal(err)
			}
			if total += n; n == 0 {
				break
			}
		}
		if total != 2 {
			t.Fatalf("deleted %d targets, want 2", total)
		}
		for _, id := range []string{"done-old", "failed-old"} {
			if _, err := s.Target(ctx, "a", id); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: %v, want deleted", id, err)
			}
		}
		for _, id := range []string{"pending-old", "done-new", "human-old"} {
			if _, err := s.Target(ctx, "a", id); err != nil {
				t.Errorf("%s: %v, want kept", id, err)
			}
		}
	})
}
