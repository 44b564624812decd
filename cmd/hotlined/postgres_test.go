package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgSchema creates a fresh schema on the test PostgreSQL server and returns a DSN that
// uses it; the schema is dropped when the test ends. Without a server the test skips,
// except under CI.
func pgSchema(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("HOTLINE_TEST_PG_DSN")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL is required under CI: %v", err)
		}
		t.Skipf("no PostgreSQL at %s (%v); skipping", dsn, err)
	}
	defer conn.Close(ctx)
	schema := "hotline_test_" + strings.ToLower(rand.Text()[:10])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, dsn); err == nil {
			c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			c.Close(ctx)
		}
	})
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return fmt.Sprintf("%s%ssearch_path=%s", dsn, sep, schema)
}

// --cdr-dsn postgres://… stores the server's records in PostgreSQL.
func TestRecordsInPostgres(t *testing.T) {
	t.Parallel()
	dsn := pgSchema(t)
	s := startServer(t, "", func(o *options) { o.CDRDSN = dsn })
	if res := runSIPp(t, s.sipAddr(), "uac_rfc2833.xml"); !res.ok {
		t.Fatalf("SIPp failed:\n%s", res.output)
	}
	rec := s.records(t, 1)[0]
	if rec.IVRPath != "main>2>complaint" || rec.Disposition != "abandoned" {
		t.Fatalf("record in PostgreSQL %+v", rec)
	}
	body := httpGet(t, "http://"+s.httpAddr()+"/api/v1/cdrs", 200)
	if !strings.Contains(body, "main>2>complaint") {
		t.Fatalf("API does not serve the PostgreSQL record:\n%s", body)
	}
}
