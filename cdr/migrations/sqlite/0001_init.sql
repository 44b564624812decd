-- 0001: call detail records, one row per call.
-- Times are INTEGER microseconds since the Unix epoch (UTC), NULL when unset.
CREATE TABLE cdr (
    id           TEXT    NOT NULL PRIMARY KEY,
    sip_call_id  TEXT    NOT NULL DEFAULT '',
    direction    TEXT    NOT NULL DEFAULT '',
    trunk        TEXT    NOT NULL DEFAULT '',
    caller       TEXT    NOT NULL DEFAULT '',
    called       TEXT    NOT NULL DEFAULT '',
    start_us     INTEGER,
    answer_us    INTEGER,
    end_us       INTEGER,
    ivr_path     TEXT    NOT NULL DEFAULT '',
    case_number  TEXT    NOT NULL DEFAULT '',
    queue        TEXT    NOT NULL DEFAULT '',
    enqueue_us   INTEGER,
    agent        TEXT    NOT NULL DEFAULT '',
    connect_us   INTEGER,
    disposition  TEXT    NOT NULL DEFAULT '',
    hangup_side  TEXT    NOT NULL DEFAULT '',
    hangup_cause TEXT    NOT NULL DEFAULT '',
    sip_status   INTEGER NOT NULL DEFAULT 0,
    codec        TEXT    NOT NULL DEFAULT '',
    node_id      TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX cdr_start       ON cdr (start_us);
CREATE INDEX cdr_queue       ON cdr (queue, start_us);
CREATE INDEX cdr_disposition ON cdr (disposition, start_us);
CREATE INDEX cdr_caller      ON cdr (caller, start_us);
