-- 0007: the work-order feed (docs/events.md). outbox holds each event once (id is its
-- idempotency key), in the order stored (seq); rows are written in the transaction that
-- stores the record or agent event they come from. webhook_cursor: every event up to seq
-- was delivered, skipped or given up on by that webhook; webhook_dead: what it gave up on.
CREATE TABLE outbox (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    id      TEXT    NOT NULL UNIQUE,
    type    TEXT    NOT NULL,
    time_us INTEGER NOT NULL,           -- unix microseconds
    node_id TEXT    NOT NULL DEFAULT '',
    data    TEXT    NOT NULL            -- JSON (cdr.EventData), numbers in full
);
CREATE INDEX outbox_time ON outbox (time_us);

CREATE TABLE webhook_cursor (
    webhook    TEXT    NOT NULL PRIMARY KEY,
    seq        INTEGER NOT NULL,
    updated_us INTEGER NOT NULL
);

CREATE TABLE webhook_dead (
    webhook    TEXT    NOT NULL,
    event_id   TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    event      TEXT    NOT NULL,        -- the whole event (JSON), kept after the outbox is pruned
    attempts   INTEGER NOT NULL,
    last_error TEXT    NOT NULL DEFAULT '',
    dead_us    INTEGER NOT NULL,
    replays    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (webhook, event_id)
);
