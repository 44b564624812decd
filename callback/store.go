package callback

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hotline12345/hotline/cdr"
)

// The Store lives in the call records' database: OpenStore takes the same
// path or DSN as cdr.Open and keeps its own tables (campaigns,
// campaign_targets) and its own schema version table
// (callback_schema_version), so the two handles coexist. Each dialect has
// its file (store_sqlite.go, store_postgres.go) and its migrations
// (migrations/sqlite/, migrations/postgres/); what both share is here.

// OpenStore opens the campaign store dsnOrPath names: PostgreSQL for a
// postgres:// or postgresql:// URL, else the SQLite database file at that
// path (created if missing). The schema is brought up to date with the
// embedded migrations.
func OpenStore(ctx context.Context, dsnOrPath string) (Store, error) {
	if strings.HasPrefix(dsnOrPath, "postgres://") || strings.HasPrefix(dsnOrPath, "postgresql://") {
		return openPostgres(ctx, dsnOrPath)
	}
	return openSQLite(ctx, dsnOrPath)
}

// schemaTable records the applied migrations of this package.
const schemaTable = "callback_schema_version"

// migrateSchema applies the migrations of ms newer than cur, through exec
// inside the caller's transaction; record stores an applied one.
func migrateSchema(ctx context.Context, name string, ms []cdr.Migration, cur int,
	exec func(ctx context.Context, q string) error, record func(ctx context.Context, m cdr.Migration) error) error {
	if cur > len(ms) {
		return fmt.Errorf("callback: database %s: campaign schema version %d is newer than this build (%d); upgrade hotlined", name, cur, len(ms))
	}
	for _, m := range ms[cur:] {
		if err := exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("callback: database %s: migration %s: %w", name, m.Name, err)
		}
		if err := record(ctx, m); err != nil {
			return fmt.Errorf("callback: database %s: %w", name, err)
		}
	}
	return nil
}

// usTime is t truncated to the stored precision (microseconds), in UTC.
func usTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Truncate(time.Microsecond).UTC()
}

var campaignStates = []string{CampaignRunning, CampaignPaused, CampaignCancelled, CampaignDone}

var targetStates = []string{TargetPending, TargetDialing, TargetHuman, TargetDone, TargetFailed, TargetCancelled}

// nonFinal are the target states that still need work; AtRisk counts them.
var nonFinal = []string{TargetPending, TargetDialing, TargetHuman}

// prepareCampaign validates c and fills the defaults: state running,
// created now.
func prepareCampaign(c *Campaign) error {
	if c.ID == "" {
		return fmt.Errorf("%w: no id", ErrBadCampaign)
	}
	if c.State == "" {
		c.State = CampaignRunning
	}
	if !slices.Contains(campaignStates, c.State) {
		return fmt.Errorf("%w: unknown state %q", ErrBadCampaign, c.State)
	}
	if c.Created.IsZero() {
		c.Created = time.Now()
	}
	c.Created = usTime(c.Created)
	return nil
}

// campaignSettings is the JSON of c without the fields stored in columns;
// a field added to Campaign is stored without a migration.
func campaignSettings(c Campaign) ([]byte, error) {
	c.ID, c.Name, c.State, c.Created = "", "", "", time.Time{}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("callback: campaign settings: %w", err)
	}
	return b, nil
}

// decodeCampaign rebuilds a campaign from its columns and settings.
func decodeCampaign(id, name, state string, created time.Time, settings []byte) (Campaign, error) {
	var c Campaign
	if len(settings) > 0 {
		if err := json.Unmarshal(settings, &c); err != nil {
			return Campaign{}, fmt.Errorf("callback: campaign %s: settings: %w", id, err)
		}
	}
	c.ID, c.Name, c.State, c.Created = id, name, state, created
	return c, nil
}

// checkTransition refuses to move a cancelled campaign to another state.
func checkTransition(id, from, to string) error {
	if !slices.Contains(campaignStates, to) {
		return fmt.Errorf("%w: unknown state %q", ErrBadCampaign, to)
	}
	if from == CampaignCancelled && to != CampaignCancelled {
		return fmt.Errorf("callback: campaign %s is cancelled: %w", id, ErrFinal)
	}
	return nil
}

// sortTargets validates ts for campaign and fills defaults (state pending,
// updated now, times at stored precision). It returns the indexes of the
// targets to insert, in order, and the refused ones: no case id or phone,
// an unknown state, or a case id seen earlier in ts.
func sortTargets(campaign string, ts []Target, now time.Time) (keep []int, refused []TargetError) {
	keep = make([]int, 0, len(ts))
	seen := make(map[string]struct{}, len(ts))
	for i := range ts {
		t := &ts[i]
		t.Campaign = campaign
		var msg string
		switch {
		case t.CaseID == "":
			msg = ErrBadTarget.Error() + ": no case id"
		case t.Phone == "":
			msg = ErrBadTarget.Error() + ": no phone"
		case t.State != "" && !slices.Contains(targetStates, t.State):
			msg = fmt.Sprintf("%v: unknown state %q", ErrBadTarget, t.State)
		}
		if msg == "" {
			if _, dup := seen[t.CaseID]; dup {
				msg = ErrDuplicateCase.Error()
			}
		}
		if msg != "" {
			refused = append(refused, TargetError{Index: i, CaseID: t.CaseID, Err: msg})
			continue
		}
		seen[t.CaseID] = struct{}{}
		if t.State == "" {
			t.State = TargetPending
		}
		if t.Updated.IsZero() {
			t.Updated = now
		}
		normTimes(t)
		keep = append(keep, i)
	}
	return keep, refused
}

// normTimes brings t's times to the stored precision.
func normTimes(t *Target) {
	for _, p := range []*time.Time{&t.ClosedAt, &t.Deadline, &t.NextAt, &t.ReachedAt, &t.Updated} {
		*p = usTime(*p)
	}
}

// prepareUpdate validates an Update's target and fills Updated.
func prepareUpdate(t *Target) error {
	if t.Campaign == "" || t.CaseID == "" {
		return fmt.Errorf("%w: no campaign or case id", ErrBadTarget)
	}
	if !slices.Contains(targetStates, t.State) {
		return fmt.Errorf("%w: unknown state %q", ErrBadTarget, t.State)
	}
	if t.Updated.IsZero() {
		t.Updated = time.Now()
	}
	normTimes(t)
	return nil
}

// mergeRefused merges two lists of refused targets, each sorted by index.
func mergeRefused(a, b []TargetError) []TargetError {
	if len(a) == 0 {
		return b
	}
	if len(b) == 0 {
		return a
	}
	out := append(append(make([]TargetError, 0, len(a)+len(b)), a...), b...)
	slices.SortStableFunc(out, func(x, y TargetError) int { return x.Index - y.Index })
	return out
}

// countRow is one group of Counts' query.
type countRow struct {
	state, outcome, satisfaction string
	n, atRisk, reached, inTime   int
}

func (c *Counts) add(r countRow) {
	switch r.state {
	case TargetPending:
		c.Pending += r.n
	case TargetDialing, TargetHuman:
		c.InProgress += r.n
	case TargetDone:
		c.Done += r.n
	case TargetFailed:
		c.Failed += r.n
	case TargetCancelled:
		c.Cancelled += r.n
	}
	if r.outcome != "" {
		c.Outcomes[r.outcome] += r.n
	}
	if r.satisfaction != "" {
		c.Satisfied[r.satisfaction] += r.n
	}
	c.AtRisk += r.atRisk
	c.Reached += r.reached
	c.InTime += r.inTime
}

func newCounts() Counts {
	return Counts{Outcomes: map[string]int{}, Satisfied: map[string]int{}}
}
