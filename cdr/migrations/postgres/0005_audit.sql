-- 0005: the audit log of the HTTP API. Same meaning as
-- migrations/sqlite/0005_audit.sql.
CREATE TABLE audit (
    id      BIGSERIAL   PRIMARY KEY,
    time_at TIMESTAMPTZ NOT NULL,
    who     TEXT        NOT NULL DEFAULT '',
    role    TEXT        NOT NULL DEFAULT '',
    source  TEXT        NOT NULL DEFAULT '',
    action  TEXT        NOT NULL,
    target  TEXT        NOT NULL DEFAULT '',
    result  INTEGER     NOT NULL
);
CREATE INDEX audit_time ON audit (time_at);
