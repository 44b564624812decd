-- 0007: the work-order feed. Same meaning as migrations/sqlite/0007_outbox.sql.
CREATE TABLE outbox (
    seq     BIGSERIAL   PRIMARY KEY,
    id      TEXT        NOT NULL UNIQUE,
    type    TEXT        NOT NULL,
    time_at TIMESTAMPTZ NOT NULL,
    node_id TEXT        NOT NULL DEFAULT '',
    data    TEXT        NOT NULL
);
CREATE INDEX outbox_time ON outbox (time_at);

CREATE TABLE webhook_cursor (
    webhook    TEXT        NOT NULL PRIMARY KEY,
    seq        BIGINT      NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE webhook_dead (
    webhook    TEXT        NOT NULL,
    event_id   TEXT        NOT NULL,
    seq        BIGINT      NOT NULL,
    event      TEXT        NOT NULL,
    attempts   INTEGER     NOT NULL,
    last_error TEXT        NOT NULL DEFAULT '',
    dead_at    TIMESTAMPTZ NOT NULL,
    replays    INTEGER     NOT NULL DEFAULT 0,
    PRIMARY KEY (webhook, event_id)
);
