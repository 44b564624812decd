-- 0001: call detail records, one row per call (same meaning as
-- migrations/sqlite/0001_init.sql; times are timestamptz, NULL when unset).
CREATE TABLE cdr (
    id           TEXT        NOT NULL PRIMARY KEY,
    sip_call_id  TEXT        NOT NULL DEFAULT '',
    direction    TEXT        NOT NULL DEFAULT '',
    trunk        TEXT        NOT NULL DEFAULT '',
    caller       TEXT        NOT NULL DEFAULT '',
    called       TEXT        NOT NULL DEFAULT '',
    start_at     TIMESTAMPTZ,
    answer_at    TIMESTAMPTZ,
    end_at       TIMESTAMPTZ,
    ivr_path     TEXT        NOT NULL DEFAULT '',
    case_number  TEXT        NOT NULL DEFAULT '',
    queue        TEXT        NOT NULL DEFAULT '',
    enqueue_at   TIMESTAMPTZ,
    agent        TEXT        NOT NULL DEFAULT '',
    connect_at   TIMESTAMPTZ,
    disposition  TEXT        NOT NULL DEFAULT '',
    hangup_side  TEXT        NOT NULL DEFAULT '',
    hangup_cause TEXT        NOT NULL DEFAULT '',
    sip_status   INTEGER     NOT NULL DEFAULT 0,
    codec        TEXT        NOT NULL DEFAULT '',
    node_id      TEXT        NOT NULL DEFAULT ''
);

CREATE INDEX cdr_start       ON cdr (start_at);
CREATE INDEX cdr_queue       ON cdr (queue, start_at);
CREATE INDEX cdr_disposition ON cdr (disposition, start_at);
CREATE INDEX cdr_caller      ON cdr (caller, start_at);
