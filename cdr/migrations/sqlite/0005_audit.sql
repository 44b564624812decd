-- 0005: the audit log of the HTTP API (等保 2.0 security audit): one row
-- per state-changing request and per export of full numbers.
CREATE TABLE audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    time_us INTEGER NOT NULL,           -- unix microseconds
    who     TEXT    NOT NULL DEFAULT '', -- token name or agent id; empty if unauthenticated
    role    TEXT    NOT NULL DEFAULT '',
    source  TEXT    NOT NULL DEFAULT '', -- client address
    action  TEXT    NOT NULL,           -- method and route, "POST /api/v1/agents/{id}/{action}"
    target  TEXT    NOT NULL DEFAULT '', -- the request path with its query
    result  INTEGER NOT NULL            -- HTTP status
);
CREATE INDEX audit_time ON audit (time_us);
