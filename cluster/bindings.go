// Package cluster shares state between hotlined nodes behind one SIP front.
package cluster

// Bindings: the registrar's bindings, shared through PostgreSQL. Each node stays the
// registrar of the phones the front sends to it; every change of a user's bindings is
// written (Save, from the registrar's OnChange), and a node that must ring an agent
// registered elsewhere reads them from the table (Bindings). The Path of each binding
// leads back through the front that forwarded its REGISTER.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	sipgosip "github.com/emiago/sipgo/sip"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hotline12345/hotline/sip"
)

const (
	// bindingSaveTimeout bounds a Save: it runs on the registrar's OnChange chain, before
	// the REGISTER is answered.
	bindingSaveTimeout = 2 * time.Second
	// bindingReadTimeout bounds the look-up of a user's bindings when ringing.
	bindingReadTimeout = time.Second
)

const bindingSchema = `CREATE TABLE IF NOT EXISTS cluster_bindings (
	sip_user    text        NOT NULL,
	binding_key text        NOT NULL,
	contact     text        NOT NULL,
	source      text        NOT NULL DEFAULT '',
	transport   text        NOT NULL DEFAULT '',
	path        text[]      NOT NULL DEFAULT '{}',
	instance    text        NOT NULL DEFAULT '',
	reg_id      text        NOT NULL DEFAULT '',
	expires     timestamptz NOT NULL,
	registered  timestamptz NOT NULL,
	user_agent  text        NOT NULL DEFAULT '',
	node_id     text        NOT NULL,
	updated     timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (sip_user, binding_key)
)`

const bindingIndex = `CREATE INDEX IF NOT EXISTS cluster_bindings_expires ON cluster_bindings (expires)`

// Bindings is the cluster's view of registered phones. It satisfies call.Directory.
// Its methods are safe for concurrent use.
type Bindings struct {
	pool   *pgxpool.Pool
	nodeID string
	local  interface {
		Bindings(user string) []sip.Binding
	}
	log *slog.Logger
	now func() time.Time
}

// NewBindings creates the table if missing and returns the store of node nodeID, whose
// own registrar is local (nil: none).
func NewBindings(ctx context.Context, pool *pgxpool.Pool, nodeID string, local interface {
	Bindings(user string) []sip.Binding
}) (*Bindings, error) {
	if nodeID == "" {
		return nil, errors.New("cluster: bindings need a node ID")
	}
	for _, q := range []string{bindingSchema, bindingIndex} {
		_, err := pool.Exec(ctx, q)
		if err != nil {
			// Two nodes starting together: IF NOT EXISTS is not atomic in PostgreSQL (the
			// loser gets a unique violation on the catalog); the second try sees the table.
			_, err = pool.Exec(ctx, q)
		}
		if err != nil {
			return nil, fmt.Errorf("cluster: create cluster_bindings: %w", err)
		}
	}
	return &Bindings{
		pool: pool, nodeID: nodeID, local: local, now: time.Now,
		log: slog.Default().With("caller", "cluster/bindings", "node", nodeID),
	}, nil
}

// Save records the live bindings of user on this node (a sip.RegistrarConfig.OnChange):
// the user's rows of this node, and rows of other nodes with the same binding key (the
// phone moved here), are replaced by bs. Rows of other nodes with other keys stay until
// they expire. It waits at most 2 s; a failure is logged.
func (b *Bindings) Save(user string, bs []sip.Binding, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), bindingSaveTimeout)
	defer cancel()
	if err := b.save(ctx, user, bs); err != nil {
		b.log.Warn("cannot save bindings", "user", user, "bindings", len(bs), "reason", reason, "error", err)
	}
}

func (b *Bindings) save(ctx context.Context, user string, bs []sip.Binding) error {
	keys := make([]string, len(bs))
	for i := range bs {
		keys[i] = bs[i].Key()
	}
	return pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx,
			`DELETE FROM cluster_bindings WHERE sip_user = $1 AND (node_id = $2 OR binding_key = ANY($3))`,
			user, b.nodeID, keys); err != nil {
			return err
		}
		batch := &pgx.Batch{}
		for i := range bs {
			e := &bs[i]
			src := ""
			if e.Source.IsValid() {
				src = e.Source.String()
			}
			path := e.Path
			if path == nil {
				path = []string{}
			}
			batch.Queue(`INSERT INTO cluster_bindings (sip_user, binding_key, contact, source, transport, path,
				instance, reg_id, expires, registered, user_agent, node_id, updated)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now())
				ON CONFLICT (sip_user, binding_key) DO UPDATE SET contact = EXCLUDED.contact,
				source = EXCLUDED.source, transport = EXCLUDED.transport, path = EXCLUDED.path,
				instance = EXCLUDED.instance, reg_id = EXCLUDED.reg_id, expires = EXCLUDED.expires,
				registered = EXCLUDED.registered, user_agent = EXCLUDED.user_agent,
				node_id = EXCLUDED.node_id, updated = now()`,
				user, keys[i], e.Contact.String(), src, e.Transport, path,
				e.Instance, e.RegID, e.Expires, e.Registered, e.UserAgent, b.nodeID)
		}
		return tx.SendBatch(ctx, batch).Close()
	})
}

// Bindings returns the bindings of user, newest first: the local registrar's when it has
// any, else the unexpired ones in PostgreSQL (registered by other nodes). On a database
// error it returns the local ones (none).
func (b *Bindings) Bindings(user string) []sip.Binding {
	if b.local != nil {
		if bs := b.local.Bindings(user); len(bs) > 0 {
			return bs
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), bindingReadTimeout)
	defer cancel()
	bs, err := b.read(ctx, user)
	if err != nil {
		b.log.Warn("cannot read bindings", "user", user, "error", err)
		return nil
	}
	return bs
}

func (b *Bindings) read(ctx context.Context, user string) ([]sip.Binding, error) {
	rows, err := b.pool.Query(ctx, `SELECT contact, source, transport, path, instance, reg_id, expires,
		registered, user_agent FROM cluster_bindings WHERE sip_user = $1 AND expires > $2
		ORDER BY registered DESC, binding_key`, user, b.now())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []sip.Binding
	for rows.Next() {
		var contact, src string
		e := sip.Binding{User: user}
		if err := rows.Scan(&contact, &src, &e.Transport, &e.Path, &e.Instance, &e.RegID, &e.Expires,
			&e.Registered, &e.UserAgent); err != nil {
			return nil, err
		}
		if err := sipgosip.ParseUri(contact, &e.Contact); err != nil {
			b.log.Warn("bad contact in cluster_bindings", "user", user, "contact", contact, "error", err)
			continue
		}
		if src != "" {
			if e.Source, err = netip.ParseAddrPort(src); err != nil {
				b.log.Warn("bad source in cluster_bindings", "user", user, "source", src, "error", err)
				continue
			}
		}
		if len(e.Path) == 0 {
			e.Path = nil
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Users returns the users with an unexpired binding on any node, sorted.
func (b *Bindings) Users(ctx context.Context) ([]string, error) {
	rows, err := b.pool.Query(ctx,
		`SELECT DISTINCT sip_user FROM cluster_bindings WHERE expires > $1 ORDER BY sip_user`, b.now())
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Purge deletes expired rows (any node's); the owner may call it now and then.
func (b *Bindings) Purge(ctx context.Context) (int64, error) {
	tag, err := b.pool.Exec(ctx, `DELETE FROM cluster_bindings WHERE expires <= $1`, b.now())
	return tag.RowsAffected(), err
}
