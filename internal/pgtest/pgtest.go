// Package pgtest gives tests a private PostgreSQL schema. The server comes from
// HOTLINE_TEST_PG_DSN (default: trust auth on 127.0.0.1:5432, database test); each call of
// Schema creates a fresh schema, dropped when the test ends. Without a server the test
// skips, saying why, except under CI=true, where it fails.
package pgtest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// DSN is the test server's DSN.
func DSN() string {
	if d := os.Getenv("HOTLINE_TEST_PG_DSN"); d != "" {
		return d
	}
	return defaultDSN
}

var (
	probeOnce sync.Once
	probeErr  error
)

// Require skips (or under CI fails) t when no server answers.
func Require(t testing.TB) {
	t.Helper()
	probeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, DSN())
		if err == nil {
			err = c.Ping(ctx)
			c.Close(ctx)
		}
		probeErr = err
	})
	if probeErr == nil {
		return
	}
	msg := fmt.Sprintf("PostgreSQL at %s does not answer (%v); set HOTLINE_TEST_PG_DSN to test the PostgreSQL stores", DSN(), probeErr)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: failing instead of skipping)")
	}
	t.Skip(msg)
}

// Schema creates a fresh schema, dropped at cleanup, and returns a DSN whose search_path is
// that schema.
func Schema(t testing.TB) string {
	t.Helper()
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	schema := "hotline_test_" + strings.ToLower(rand.Text()[:12])
	c, err := pgx.Connect(ctx, DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, DSN())
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return WithSearchPath(t, DSN(), schema)
}

// WithSearchPath is dsn (a URL or keyword/value DSN) with search_path set to schema.
func WithSearchPath(t testing.TB, dsn, schema string) string {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return dsn + " search_path=" + schema
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
