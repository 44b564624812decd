package cluster

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	sipgosip "github.com/emiago/sipgo/sip"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hotline12345/hotline/internal/pgtest"
	"github.com/hotline12345/hotline/sip"
)

// bindingLocal stands in for a node's registrar.
type bindingLocal struct {
	mu sync.Mutex
	m  map[string][]sip.Binding
}

func (l *bindingLocal) Bindings(user string) []sip.Binding {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.m[user])
}

func bindingPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	dsn := pgtest.Schema(t) // a private schema: the table name is fixed
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func bindingNew(t *testing.T, pool *pgxpool.Pool, node string, local *bindingLocal) *Bindings {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var l interface{ Bindings(string) []sip.Binding }
	if local != nil {
		l = local
	}
	b, err := NewBindings(ctx, pool, node, l)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func bindingMake(t *testing.T, user, contact, instance string, registered time.Time, path ...string) sip.Binding {
	t.Helper()
	b := sip.Binding{
		User: user, Transport: "UDP", Instance: instance, UserAgent: "MicroSIP/3.21",
		Source:     netip.MustParseAddrPort("198.51.100.7:5062"),
		Registered: registered, Expires: registered.Add(10 * time.Minute), Path: path,
	}
	if err := sipgosip.ParseUri(contact, &b.Contact); err != nil {
		t.Fatal(err)
	}
	return b
}

func bindingKeys(bs []sip.Binding) []string {
	out := make([]string, len(bs))
	for i := range bs {
		out[i] = bs[i].Key()
	}
	return out
}

func TestBindingsShared(t *testing.T) {
	pool := bindingPool(t)
	localA := &bindingLocal{m: map[string][]sip.Binding{}}
	a := bindingNew(t, pool, "node-a", localA)
	b := bindingNew(t, pool, "node-b", nil)
	bindingNew(t, pool, "node-a", localA) // the table exists: no error

	now := time.Now().Truncate(time.Microsecond) // timestamptz keeps microseconds
	path := "<sip:10.0.0.5:5060;lr;received=sip%3A198.51.100.7%3A5062>"
	older := bindingMake(t, "1001", "sip:1001@192.168.1.20:5062;transport=tcp", "", now.Add(-time.Minute), path)
	newer := bindingMake(t, "1001", "sip:1001@192.168.1.21:5062", "<urn:uuid:00000000-0000-0000-0000-000000000001>", now, path)
	newer.RegID = "1"
	a.Save("1001", []sip.Binding{older, newer}, sip.ReasonRegister)

	// Node B has no local binding: it reads node A's, newest first, every field back.
	got := b.Bindings("1001")
	if len(got) != 2 {
		t.Fatalf("node-b sees %d bindings, want 2: %+v", len(got), got)
	}
	for i, want := range []sip.Binding{newer, older} {
		g := got[i]
		if g.User != want.User || g.Contact.String() != want.Contact.String() || g.Source != want.Source ||
			g.Transport != want.Transport || !slices.Equal(g.Path, want.Path) || !g.Expires.Equal(want.Expires) ||
			!g.Registered.Equal(want.Registered) || g.UserAgent != want.UserAgent || g.Instance != want.Instance ||
			g.RegID != want.RegID || g.Key() != want.Key() {
			t.Errorf("binding %d = %+v\nwant %+v", i, g, want)
		}
	}
	// Node A answers from its registrar when it has the user.
	localA.m["1001"] = []sip.Binding{newer}
	if got := a.Bindings("1001"); len(got) != 1 || got[0].Key() != newer.Key() {
		t.Fatalf("node-a = %+v, want its local binding", got)
	}
	if got := b.Bindings("nobody"); got != nil {
		t.Fatalf("unknown user: %+v", got)
	}

	// Expired rows are not returned, nor their users listed.
	stale := bindingMake(t, "1002", "sip:1002@192.168.1.30:5062", "", now.Add(-time.Hour))
	stale.Expires = now.Add(-time.Second)
	a.Save("1002", []sip.Binding{stale}, sip.ReasonRegister)
	if got := b.Bindings("1002"); len(got) != 0 {
		t.Fatalf("expired binding returned: %+v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	users, err := b.Users(ctx)
	if err != nil || !slices.Equal(users, []string{"1001"}) {
		t.Fatalf("users = %v, %v; want [1001]", users, err)
	}
	if n, err := a.Purge(ctx); err != nil || n != 1 {
		t.Fatalf("purge = %d, %v; want 1", n, err)
	}
}

// TestBindingsReplaceOwnRows: a node's Save replaces its own rows of the user and rows of
// any node with the same key (the phone moved), never another node's other bindings.
func TestBindingsReplaceOwnRows(t *testing.T) {
	pool := bindingPool(t)
	a := bindingNew(t, pool, "node-a", nil)
	b := bindingNew(t, pool, "node-b", nil)
	c := bindingNew(t, pool, "node-c", nil) // reads only
	now := time.Now().Truncate(time.Microsecond)
	deskA := bindingMake(t, "1003", "sip:1003@192.168.1.40:5062", "", now.Add(-2*time.Minute))
	deskB := bindingMake(t, "1003", "sip:1003@192.168.1.41:5062", "", now.Add(-time.Minute))
	mobile := bindingMake(t, "1003", "sip:1003@192.168.1.42:5062", "<urn:uuid:2>", now)

	b.Save("1003", []sip.Binding{deskB}, sip.ReasonRegister)
	a.Save("1003", []sip.Binding{deskA}, sip.ReasonRegister)
	if got := bindingKeys(c.Bindings("1003")); !slices.Equal(got, []string{deskB.Key(), deskA.Key()}) {
		t.Fatalf("keys = %q, want B's then A's", got)
	}
	// A's phone unregisters: B's row stays.
	a.Save("1003", nil, sip.ReasonUnregister)
	if got := bindingKeys(c.Bindings("1003")); !slices.Equal(got, []string{deskB.Key()}) {
		t.Fatalf("keys = %q, want only B's", got)
	}
	// B's desk phone is now registered at A (the hash moved), with the mobile: A takes the row.
	deskB.Registered = now.Add(-30 * time.Second)
	a.Save("1003", []sip.Binding{mobile, deskB}, sip.ReasonRegister)
	got := c.Bindings("1003")
	if keys := bindingKeys(got); !slices.Equal(keys, []string{mobile.Key(), deskB.Key()}) {
		t.Fatalf("keys = %q", keys)
	}
	if !got[1].Registered.Equal(deskB.Registered) {
		t.Fatalf("desk row not replaced by A's: %+v", got[1])
	}
	// B, which no longer has the user, saves nothing for it: A's rows stay.
	b.Save("1003", nil, sip.ReasonExpired)
	if keys := bindingKeys(c.Bindings("1003")); len(keys) != 2 {
		t.Fatalf("B's Save removed A's rows: %q", keys)
	}
}

// TestBindingsDatabaseDown: without the database, Bindings returns the local ones (none
// when there are none) and Save only logs.
func TestBindingsDatabaseDown(t *testing.T) {
	pool := bindingPool(t)
	local := &bindingLocal{m: map[string][]sip.Binding{}}
	a := bindingNew(t, pool, "node-a", local)
	now := time.Now()
	local.m["1004"] = []sip.Binding{bindingMake(t, "1004", "sip:1004@192.168.1.50:5062", "", now)}
	pool.Close()
	start := time.Now()
	a.Save("1004", local.m["1004"], sip.ReasonRegister)
	if got := a.Bindings("1004"); len(got) != 1 {
		t.Fatalf("local bindings not returned: %+v", got)
	}
	if got := a.Bindings("1005"); got != nil {
		t.Fatalf("bindings = %+v", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v with the database down", d)
	}
}
