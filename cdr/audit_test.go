package cdr

import (
	"context"
	"testing"
	"time"
)

// The audit log keeps its rows and lists them by time window, oldest first.
func TestAuditLog(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		al, ok := s.(AuditLog)
		if !ok {
			t.Fatalf("%T is not an AuditLog", s)
		}
		t0 := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
		es := []AuditEntry{
			{Time: t0.Add(2 * time.Second), Who: "1001", Role: "agent", Source: "127.0.0.1:5000", Action: "POST /api/v1/agents/{id}/{action}", Target: "/api/v1/agents/1001/logout", Result: 200},
			{Time: t0, Who: "ops", Role: "admin", Source: "10.0.0.1:1", Action: "GET /api/v1/cdrs", Target: "/api/v1/cdrs?format=csv", Result: 200},
			{Time: t0.Add(time.Hour), Action: "POST /api/v1/campaigns", Target: "/api/v1/campaigns", Result: 401},
		}
		if err := al.AppendAudit(ctx, es); err != nil {
			t.Fatal(err)
		}
		all, err := al.ListAudit(ctx, AuditFilter{})
		if err != nil || len(all) != 3 {
			t.Fatalf("ListAudit: %d rows, %v", len(all), err)
		}
		if all[0] != es[1] || all[1] != es[0] || all[2] != es[2] {
			t.Fatalf("ListAudit: %+v", all)
		}
		win, err := al.ListAudit(ctx, AuditFilter{From: t0.Add(time.Second), To: t0.Add(time.Minute)})
		if err != nil || len(win) != 1 || win[0] != es[0] {
			t.Fatalf("window: %+v, %v", win, err)
		}
		one, err := al.ListAudit(ctx, AuditFilter{Limit: 1})
		if err != nil || len(one) != 1 || one[0] != es[1] {
			t.Fatalf("limit 1: %+v, %v", one, err)
		}
	})
}
