package cdr

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// AuditEntry is one row of the API's audit log (等保 2.0 security audit):
// who did what, from where, and how it ended.
type AuditEntry struct {
	Time   time.Time `json:"time"`
	Who    string    `json:"who"`    // token name or agent id; "" if unauthenticated
	Role   string    `json:"role"`   // viewer, supervisor, admin, agent; "" if unauthenticated
	Source string    `json:"source"` // the client's address
	Action string    `json:"action"` // method and route: "POST /api/v1/agents/{id}/{action}"
	Target string    `json:"target"` // the request's path and query
	Result int       `json:"result"` // HTTP status
}

// AuditFilter selects audit rows: From (inclusive) and To (exclusive) may
// be zero (open); Limit defaults to DefaultListLimit, at most MaxListLimit.
type AuditFilter struct {
	From, To time.Time
	Limit    int
}

func (f AuditFilter) limit() int { return Filter{Limit: f.Limit}.limit() }

// AuditLog stores the audit log; SQLite and Postgres implement it.
type AuditLog interface {
	AppendAudit(ctx context.Context, es []AuditEntry) error
	// ListAudit returns the rows of f, oldest first.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
}

var (
	_ AuditLog = (*SQLite)(nil)
	_ AuditLog = (*Postgres)(nil)
)

const auditColumns = "who, role, source, action, target, result"

func auditWhere(f AuditFilter, mark func(int) string, timeCol string, timeArg func(time.Time) any) (string, []any) {
	var where []string
	var args []any
	if !f.From.IsZero() {
		args = append(args, timeArg(f.From))
		where = append(where, timeCol+" >= "+mark(len(args)))
	}
	if !f.To.IsZero() {
		args = append(args, timeArg(f.To))
		where = append(where, timeCol+" < "+mark(len(args)))
	}
	if len(where) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

// AppendAudit stores es in one transaction.
func (s *SQLite) AppendAudit(ctx context.Context, es []AuditEntry) error {
	if len(es) == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return s.execEach(ctx, tx, "INSERT INTO audit (time_us, "+auditColumns+") VALUES (?, ?, ?, ?, ?, ?, ?)", len(es),
			func(i int) []any {
				e := &es[i]
				return []any{e.Time.UnixMicro(), e.Who, e.Role, e.Source, e.Action, e.Target, e.Result}
			},
			func(i int) string { return "audit " + es[i].Action })
	})
}

// ListAudit returns the audit rows of f, oldest first.
func (s *SQLite) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	where, args := auditWhere(f, func(int) string { return "?" }, "time_us", func(t time.Time) any { return t.UnixMicro() })
	limit := f.limit()
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, "SELECT time_us, "+auditColumns+" FROM audit"+where+" ORDER BY time_us, id LIMIT ?", args...)
	if err != nil {
		return nil, fmt.Errorf("cdr: database %s: %w", s.path, err)
	}
	defer rows.Close()
	out := make([]AuditEntry, 0, min(limit, 256))
	for rows.Next() {
		var e AuditEntry
		var us int64
		if err := rows.Scan(&us, &e.Who, &e.Role, &e.Source, &e.Action, &e.Target, &e.Result); err != nil {
			return nil, fmt.Errorf("cdr: database %s: %w", s.path, err)
		}
		e.Time = time.UnixMicro(us).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cdr: database %s: %w", s.path, err)
	}
	return out, nil
}

// AppendAudit stores es in one statement.
func (p *Postgres) AppendAudit(ctx context.Context, es []AuditEntry) error {
	if len(es) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for i := range es {
		e := &es[i]
		b.Queue("INSERT INTO audit (time_at, "+auditColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7)",
			e.Time.UTC(), e.Who, e.Role, e.Source, e.Action, e.Target, e.Result)
	}
	return p.inTx(ctx, func(tx pgx.Tx) error {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("cdr: database %s: audit: %w", p.name, err)
		}
		return nil
	})
}

// ListAudit returns the audit rows of f, oldest first.
func (p *Postgres) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	mark := func(n int) string { return "$" + strconv.Itoa(n) }
	where, args := auditWhere(f, mark, "time_at", func(t time.Time) any { return t.UTC() })
	limit := f.limit()
	args = append(args, limit)
	q := "SELECT time_at, " + auditColumns + " FROM audit" + where + " ORDER BY time_at, id LIMIT " + mark(len(args))
	out := make([]AuditEntry, 0, min(limit, 256))
	err := p.query(ctx, q, args, func(rows pgx.Rows) error {
		var e AuditEntry
		if err := rows.Scan(&e.Time, &e.Who, &e.Role, &e.Source, &e.Action, &e.Target, &e.Result); err != nil {
			return fmt.Errorf("cdr: database %s: %w", p.name, err)
		}
		e.Time = e.Time.UTC()
		out = append(out, e)
		return nil
	})
	return out, err
}
