package callback

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotline12345/hotline/cdr"

	"github.com/hotline12345/hotline/internal/pgtest"
)

// Every store test runs against SQLite and PostgreSQL. PostgreSQL comes
// from HOTLINE_TEST_PG_DSN (default: trust auth on 127.0.0.1:5432, database
// test); each test gets a fresh schema, dropped when it ends. Without a
// server the PostgreSQL variants skip, saying why, except under CI=true,
// where they fail.

// The PostgreSQL helpers are internal/pgtest's (one per test: a fresh schema).

func testPGDSN() string               { return pgtest.DSN() }
func requirePostgres(t testing.TB)    { t.Helper(); pgtest.Require(t) }
func newPGSchema(t testing.TB) string { t.Helper(); return pgtest.Schema(t) }
func withSearchPath(t testing.TB, dsn, schema string) string {
	return pgtest.WithSearchPath(t, dsn, schema)
}

// openTestStore opens the store at dsnOrPath, closed at cleanup.
func openTestStore(t testing.TB, dsnOrPath string) Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := OpenStore(ctx, dsnOrPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// eachStore runs fn against a fresh SQLite and a fresh PostgreSQL store;
// where is the path or DSN, for a second handle.
func eachStore(t *testing.T, fn func(t *testing.T, s Store, where string)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "data", "cdr.db")
		fn(t, openTestStore(t, path), path)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := newPGSchema(t)
		fn(t, openTestStore(t, dsn), dsn)
	})
}

var t0 = time.Date(2026, 3, 16, 9, 0, 0, 0, time.UTC)

func testCampaign(id string, created time.Time) Campaign {
	return Campaign{
		ID: id, Name: "回访 " + id, Script: "satisfaction", Trunk: "loopback-out",
		Window:        Window{From: "09:00", To: "20:00", Holidays: []string{"2026-04-05"}},
		MaxConcurrent: 10, CPS: 2.5, MaxAttempts: 3,
		Retry:       RetryDelays{Busy: 5 * time.Minute, NoAnswer: 30 * time.Minute, Failed: time.Minute},
		RingTimeout: 30 * time.Second, Deadline: 24 * time.Hour, Fallback: "callback",
		FallbackDissatisfied: true, DoNotCall: []string{"13900000009"},
		Created: created,
	}
}

func mustCreate(t *testing.T, s Store, c Campaign) {
	t.Helper()
	if err := s.CreateCampaign(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

func mustAdd(t *testing.T, s Store, campaign string, ts []Target) {
	t.Helper()
	n, refused, err := s.AddTargets(context.Background(), campaign, ts)
	if err != nil || len(refused) != 0 || n != len(ts) {
		t.Fatalf("AddTargets: added %d of %d, refused %v, err %v", n, len(ts), refused, err)
	}
}

func TestStoreCampaigns(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, _ string) {
		ctx := context.Background()
		a := testCampaign("a", t0.Add(123456789*time.Nanosecond))
		mustCreate(t, s, a)
		mustCreate(t, s, Campaign{ID: "b", Name: "b", Created: t0.Add(time.Hour)})
		if err := s.CreateCampaign(ctx, Campaign{ID: "a"}); !errors.Is(err, ErrBadCampaign) {
			t.Errorf("second campaign a: %v, want ErrBadCampaign", err)
		}
		if err := s.CreateCampaign(ctx, Campaign{Name: "no id"}); !errors.Is(err, ErrBadCampaign) {
			t.Errorf("campaign without id: %v, want ErrBadCampaign", err)
		}
		got, err := s.Campaign(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		want := a
		want.State, want.Created = CampaignRunning, t0.Add(123456*time.Microsecond)
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
			t.Errorf("campaign a:\n got %+v\nwant %+v", got, want)
		}
		list, err := s.Campaigns(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ID != "b" || list[1].ID != "a" {
			t.Errorf("Campaigns (newest first): %+v", list)
		}
		if _, err := s.Campaign(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Campaign(nope): %v, want ErrNotFound", err)
		}

		mustAdd(t, s, "a", []Target{{CaseID: "c1", Phone: "13900000001"}})
		for _, st := range []string{CampaignPaused, CampaignRunning, CampaignCancelled} {
			if err := s.SetCampaignState(ctx, "a", st); err != nil {
				t.Fatalf("SetCampaignState %s: %v", st, err)
			}
			if c, _ := s.Campaign(ctx, "a"); c.State != st {
				t.Errorf("state %q after setting %q", c.State, st)
			}
		}
		// The targets are the dialer's to cancel.
		if tg, _ := s.Target(ctx, "a", "c1"); tg.State != TargetPending {
			t.Errorf("pending target after cancel: %q, want pending", tg.State)
		}
		if err := s.SetCampaignState(ctx, "a", CampaignRunning); !errors.Is(err, ErrFinal) {
			t.Errorf("resume a cancelled campaign: %v, want ErrFinal", err)
		}
		if _, _, err := s.AddTargets(ctx, "a", []Target{{CaseID: "c3", Phone: "13900000003"}}); !errors.Is(err, ErrFinal) {
			t.Errorf("targets for a cancelled campaign: %v, want ErrFinal", err)
		}
		if err := s.SetCampaignState(ctx, "b", "sleeping"); !errors.Is(err, ErrBadCampaign) {
			t.Errorf("unknown state: %v, want ErrBadCampaign", err)
		}
		if err := s.SetCampaignState(ctx, "nope", CampaignPaused); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown campaign: %v, want ErrNotFound", err)
		}
	})
}

func TestStoreAddTargetsDuplicates(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, _ string) {
		ctx := context.Background()
		mustCreate(t, s, Campaign{ID: "c", Created: t0})
		mustCreate(t, s, Campaign{ID: "other", Created: t0})
		mustAdd(t, s, "other", []Target{{CaseID: "k2", Phone: "13900000002"}}) // same case, other campaign: no clash
		added, refused, err := s.AddTargets(ctx, "c", []Target{
			{CaseID: "k1", Phone: "13900000001"},
			{CaseID: "k2", Phone: "13900000002"},
			{CaseID: "k1", Phone: "13900000003"}, // twice in the batch
			{CaseID: "k4"},                       // no phone
			{Phone: "13900000005"},               // no case id
		})
		if err != nil {
			t.Fatal(err)
		}
		if added != 2 {
			t.Errorf("added %d, want 2", added)
		}
		wantIdx := []int{2, 3, 4}
		if got := refusedIndexes(refused); !slices.Equal(got, wantIdx) {
			t.Fatalf("refused %v, want indexes %v", refused, wantIdx)
		}
		if refused[0].Err != ErrDuplicateCase.Error() || refused[0].CaseID != "k1" {
			t.Errorf("refused[0] = %+v, want duplicate k1", refused[0])
		}
		if !strings.HasPrefix(refused[1].Err, ErrBadTarget.Error()) {
			t.Errorf("refused[1] = %+v, want bad target", refused[1])
		}
		if tg, _ := s.Target(ctx, "c", "k1"); tg.Phone != "13900000001" || tg.State != TargetPending || tg.Updated.IsZero() {
			t.Errorf("k1 = %+v, want the first phone, pending, updated set", tg)
		}

		// A large batch (several multi-row inserts) with stored duplicates
		// spread over it.
		var big []Target
		for i := range 1000 {
			big = append(big, Target{CaseID: fmt.Sprintf("b%04d", i), Phone: "13900000001"})
			if i%300 == 7 {
				big = append(big, Target{CaseID: "k2", Phone: "13900000002"})
			}
		}
		added, refused, err = s.AddTargets(ctx, "c", big)
		if err != nil {
			t.Fatal(err)
		}
		if added != 1000 || len(refused) != 4 {
			t.Fatalf("big batch: added %d, refused %d %v; want 1000 and 4", added, len(refused), refused)
		}
		for _, r := range refused {
			if big[r.Index].CaseID != "k2" || r.CaseID != "k2" || r.Err != ErrDuplicateCase.Error() {
				t.Errorf("refused %+v (target %+v), want duplicate k2", r, big[r.Index])
			}
		}
		if all, _ := s.Targets(ctx, "c", "", 0); len(all) != 1002 {
			t.Errorf("%d targets stored, want 1002", len(all))
		}
		if _, _, err := s.AddTargets(ctx, "nope", big[:1]); !errors.Is(err, ErrNotFound) {
			t.Errorf("AddTargets to an unknown campaign: %v, want ErrNotFound", err)
		}
	})
}

func refusedIndexes(rs []TargetError) []int {
	var out []int
	for _, r := range rs {
		out = append(out, r.Index)
	}
	return out
}

func caseIDs(ts []Target) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.CaseID)
	}
	return out
}

func TestStoreDue(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, _ string) {
		ctx := context.Background()
		mustCreate(t, s, Campaign{ID: "c", Created: t0})
		mustCreate(t, s, Campaign{ID: "d", Created: t0})
		h := time.Hour
		mustAdd(t, s, "c", []Target{
			{CaseID: "late", Phone: "1", Deadline: t0.Add(5 * h)},
			{CaseID: "none-b", Phone: "1"},
			{CaseID: "none-a", Phone: "1"},
			{CaseID: "early", Phone: "1", Deadline: t0.Add(h)},
			{CaseID: "retry-later", Phone: "1", Deadline: t0, NextAt: t0.Add(10 * time.Minute)},
			{CaseID: "retry-now", Phone: "1", Deadline: t0.Add(2 * h), NextAt: t0},
			{CaseID: "tie-b", Phone: "1", Deadline: t0.Add(3 * h)},
			{CaseID: "tie-a", Phone: "1", Deadline: t0.Add(3 * h)},
			{CaseID: "done", Phone: "1", Deadline: t0, State: TargetDone},
		})
		mustAdd(t, s, "d", []Target{{CaseID: "elsewhere", Phone: "1", Deadline: t0}})
		due, err := s.Due(ctx, "c", t0, 100)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"early", "retry-now", "tie-a", "tie-b", "late", "none-a", "none-b"}
		if got := caseIDs(due); !slices.Equal(got, want) {
			t.Errorf("Due at t0 = %v, want %v", got, want)
		}
		due, _ = s.Due(ctx, "c", t0.Add(10*time.Minute), 3)
		if got, want := caseIDs(due), []string{"retry-later", "early", "retry-now"}; !slices.Equal(got, want) {
			t.Errorf("Due at t0+10m limit 3 = %v, want %v", got, want)
		}
		if due, _ := s.Due(ctx, "nope", t0, 10); len(due) != 0 {
			t.Errorf("Due of an unknown campaign: %v", caseIDs(due))
		}
	})
}

func TestStoreUpdateClaim(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, _ string) {
		ctx := context.Background()
		mustCreate(t, s, Campaign{ID: "c", Created: t0})
		closed := t0.Add(-2 * time.Hour)
		mustAdd(t, s, "c", []Target{{CaseID: "k1", Phone: "13900000001", Queue: "complaint", Agent: "1001",
			CallID: "call-1", ClosedAt: closed, Deadline: closed.Add(24 * time.Hour)}})
		tg, err := s.Target(ctx, "c", "k1")
		if err != nil {
			t.Fatal(err)
		}
		tg.State, tg.Attempts, tg.LastCall, tg.Updated = TargetDialing, 1, "out-1", t0.Add(999*time.Nanosecond)
		if err := s.Update(ctx, tg, TargetPending); err != nil {
			t.Fatalf("first claim: %v", err)
		}
		if err := s.Update(ctx, tg, TargetPending); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second claim: %v, want ErrNotFound", err)
		}
		// Every field the dialer writes survives, at microsecond precision.
		tg.State, tg.Outcome, tg.Satisfaction, tg.Answers = TargetDone, OutcomeAnswered, "satisfied", "q1=1"
		tg.NextAt, tg.ReachedAt, tg.ReachedBy = t0.Add(time.Minute+1500*time.Nanosecond), t0.Add(time.Second), "machine"
		tg.Human, tg.HumanAgent, tg.HumanTries, tg.Updated = "answered", "1002", 2, t0.Add(time.Minute)
		if err := s.Update(ctx, tg, TargetDialing); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Target(ctx, "c", "k1")
		want := tg
		want.NextAt = t0.Add(time.Minute + time.Microsecond)
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
			t.Errorf("after update:\n got %+v\nwant %+v", got, want)
		}
		// Unconditional update of an unknown target.
		if err := s.Update(ctx, Target{Campaign: "c", CaseID: "nope", State: TargetDone}, ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("update unknown target: %v, want ErrNotFound", err)
		}
		if err := s.Update(ctx, Target{Campaign: "c", CaseID: "k1", State: "bogus"}, ""); !errors.Is(err, ErrBadTarget) {
			t.Errorf("update to unknown state: %v, want ErrBadTarget", err)
		}
		if _, err := s.Target(ctx, "c", "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Target(nope): %v, want ErrNotFound", err)
		}

		// Claimed from many goroutines at once: exactly one wins.
		mustAdd(t, s, "c", []Target{{CaseID: "race", Phone: "13900000002"}})
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				err := s.Update(ctx, Target{Campaign: "c", CaseID: "race", State: TargetDialing, Attempts: 1}, TargetPending)
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, ErrNotFound):
					t.Errorf("claim: %v", err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Errorf("%d claims won, want 1", wins.Load())
		}
	})
}

func TestStoreCountsAndInState(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, _ string) {
		ctx := context.Background()
		mustCreate(t, s, Campaign{ID: "c", Created: t0})
		mustCreate(t, s, Campaign{ID: "d", Created: t0})
		h := time.Hour
		mustAdd(t, s, "c", []Target{
			{CaseID: "p-risk", Phone: "1", Deadline: t0.Add(h)},     // pending, at risk
			{CaseID: "p-late", Phone: "1", Deadline: t0.Add(-h)},    // pending, overdue: at risk
			{CaseID: "p-safe", Phone: "1", Deadline: t0.Add(5 * h)}, // pending, safe
			{CaseID: "p-none", Phone: "1"},                          // pending, no deadline
			{CaseID: "dial", Phone: "1", State: TargetDialing, Deadline: t0.Add(h), Outcome: OutcomeBusy},
			{CaseID: "human", Phone: "1", State: TargetHuman, Deadline: t0.Add(5 * h), Outcome: OutcomeNoAnswer},
			{CaseID: "done1", Phone: "1", State: TargetDone, Deadline: t0, Outcome: OutcomeAnswered, Satisfaction: "satisfied", ReachedAt: t0.Add(h)}, // reached after its deadline
			{CaseID: "done2", Phone: "1", State: TargetDone, Outcome: OutcomeAnswered, Satisfaction: "dissatisfied", ReachedAt: t0},                   // no deadline: in time
			{CaseID: "done3", Phone: "1", State: TargetDone, Outcome: OutcomeAnswered, Satisfaction: "satisfied"},
			{CaseID: "fail", Phone: "1", State: TargetFailed, Deadline: t0, Outcome: OutcomeNoAnswer},
			{CaseID: "dnc", Phone: "1", State: TargetCancelled, Outcome: OutcomeDNC},
		})
		mustAdd(t, s, "d", []Target{
			{CaseID: "dial-d", Phone: "1", State: TargetDialing, Deadline: t0},
			{CaseID: "a-dial", Phone: "1", State: TargetDialing},
		})
		c, err := s.Counts(ctx, "c", t0, 2*h)
		if err != nil {
			t.Fatal(err)
		}
		want := Counts{Pending: 4, InProgress: 2, Done: 3, Failed: 1, Cancelled: 1,
			Outcomes:  map[string]int{OutcomeBusy: 1, OutcomeNoAnswer: 2, OutcomeAnswered: 3, OutcomeDNC: 1},
			Satisfied: map[string]int{"satisfied": 2, "dissatisfied": 1},
			AtRisk:    3, Reached: 2, InTime: 1}
		if fmt.Sprint(c) != fmt.Sprint(want) {
			t.Errorf("Counts:\n got %+v\nwant %+v", c, want)
		}
		if _, err := s.Counts(ctx, "nope", t0, h); !errors.Is(err, ErrNotFound) {
			t.Errorf("Counts(nope): %v, want ErrNotFound", err)
		}
		mustCreate(t, s, Campaign{ID: "empty", Created: t0})
		if c, err := s.Counts(ctx, "empty", t0, h); err != nil || c.Outcomes == nil || c.Satisfied == nil || c.Pending != 0 {
			t.Errorf("Counts(empty) = %+v, %v; want zero with empty maps", c, err)
		}

		dialing, err := s.InState(ctx, TargetDialing)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, tg := range dialing {
			got = append(got, tg.Campaign+"/"+tg.CaseID)
		}
		if want := []string{"c/dial", "d/a-dial", "d/dial-d"}; !slices.Equal(got, want) {
			t.Errorf("InState(dialing) = %v, want %v", got, want)
		}
		pending, _ := s.Targets(ctx, "c", TargetPending, 2)
		if got, want := caseIDs(pending), []string{"p-late", "p-risk"}; !slices.Equal(got, want) {
			t.Errorf("Targets(pending, 2) = %v, want %v", got, want)
		}
		all, _ := s.Targets(ctx, "c", "", 0)
		want2 := []string{"p-late", "done1", "fail", "dial", "p-risk", "human", "p-safe", "dnc", "done2", "done3", "p-none"}
		if got := caseIDs(all); !slices.Equal(got, want2) {
			t.Errorf("Targets(all) = %v, want %v", got, want2)
		}
	})
}

func TestStoreReopen(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, where string) {
		ctx := context.Background()
		c := testCampaign("c", t0)
		mustCreate(t, s, c)
		mustAdd(t, s, "c", []Target{{CaseID: "k1", Phone: "13900000001", Deadline: t0}})
		tg, _ := s.Target(ctx, "c", "k1")
		tg.State = TargetDialing
		if err := s.Update(ctx, tg, TargetPending); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s2 := openTestStore(t, where)
		got, err := s2.Campaign(ctx, "c")
		if err != nil || got.Window.From != "09:00" || got.Retry.NoAnswer != 30*time.Minute || got.DoNotCall[0] != "13900000009" {
			t.Fatalf("campaign after reopen: %+v, %v", got, err)
		}
		dialing, err := s2.InState(ctx, TargetDialing)
		if err != nil || len(dialing) != 1 || dialing[0].CaseID != "k1" || !dialing[0].Deadline.Equal(t0) {
			t.Fatalf("dialling targets after reopen: %+v, %v", dialing, err)
		}
		// A third handle on a migrated schema migrates nothing and works.
		s3 := openTestStore(t, where)
		if _, refused, err := s3.AddTargets(ctx, "c", []Target{{CaseID: "k1", Phone: "1"}}); err != nil || len(refused) != 1 {
			t.Errorf("duplicate through a third handle: refused %v, err %v", refused, err)
		}
	})
}

// TestStoreBesideCDR opens the call records and the campaigns on one SQLite
// file (as the server does) and writes through both at once.
func TestStoreBesideCDR(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cdr.db")
	recs, err := cdr.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer recs.Close()
	s := openTestStore(t, path)
	ctx := context.Background()
	mustCreate(t, s, Campaign{ID: "c", Created: t0})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 50 {
			r := cdr.Record{ID: fmt.Sprintf("call-%d", i), Start: t0.Add(time.Duration(i) * time.Second), Direction: "outbound"}
			if err := recs.Upsert(ctx, []cdr.Record{r}); err != nil {
				t.Errorf("cdr upsert: %v", err)
				return
			}
		}
	})
	wg.Go(func() {
		for i := range 50 {
			if _, _, err := s.AddTargets(ctx, "c", []Target{{CaseID: fmt.Sprintf("k%d", i), Phone: "1"}}); err != nil {
				t.Errorf("add target: %v", err)
				return
			}
		}
	})
	wg.Wait()
	got, err := recs.List(ctx, cdr.Filter{})
	if err != nil || len(got) != 50 {
		t.Errorf("%d records, %v; want 50", len(got), err)
	}
	if ts, err := s.Targets(ctx, "c", "", 0); err != nil || len(ts) != 50 {
		t.Errorf("%d targets, %v; want 50", len(ts), err)
	}
	// And in the other order: the records' store opens a file the
	// campaigns' store created.
	path2 := filepath.Join(t.TempDir(), "cdr.db")
	openTestStore(t, path2)
	recs2, err := cdr.OpenSQLite(path2)
	if err != nil {
		t.Fatal(err)
	}
	defer recs2.Close()
	if err := recs2.Upsert(ctx, []cdr.Record{{ID: "x", Start: t0}}); err != nil {
		t.Fatal(err)
	}
}

func TestOpenStoreBadPath(t *testing.T) {
	ctx := context.Background()
	if _, err := OpenStore(ctx, "file:x.db?mode=ro"); err == nil {
		t.Error("a SQLite URI was accepted")
	}
	if _, err := OpenStore(ctx, "postgres://u:secret@[::1"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("bad DSN: %v (must fail without the password)", err)
	}
}

func benchTargets(n int) []Target {
	ts := make([]Target, n)
	for i := range ts {
		closed := t0.Add(time.Duration(i) * time.Second)
		ts[i] = Target{CaseID: fmt.Sprintf("C2026%07d", i), Phone: fmt.Sprintf("139%08d", i), Queue: "complaint",
			Agent: "1001", ClosedAt: closed, Deadline: closed.Add(24 * time.Hour)}
	}
	return ts
}

// BenchmarkAddTargets adds 100,000 targets in one call (rows/s reported).
func BenchmarkAddTargets(b *testing.B) {
	ts := benchTargets(100_000)
	run := func(b *testing.B, s Store) {
		ctx := context.Background()
		for i := 0; b.Loop(); i++ {
			id := fmt.Sprintf("bench-%d", i)
			if err := s.CreateCampaign(ctx, Campaign{ID: id}); err != nil {
				b.Fatal(err)
			}
			if n, _, err := s.AddTargets(ctx, id, ts); err != nil || n != len(ts) {
				b.Fatalf("added %d: %v", n, err)
			}
		}
		b.ReportMetric(float64(b.N*len(ts))/b.Elapsed().Seconds(), "rows/s")
	}
	b.Run("sqlite", func(b *testing.B) {
		run(b, openTestStore(b, filepath.Join(b.TempDir(), "cdr.db")))
	})
	b.Run("postgres", func(b *testing.B) {
		run(b, openTestStore(b, newPGSchema(b)))
	})
}
