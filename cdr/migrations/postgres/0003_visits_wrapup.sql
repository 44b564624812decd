-- 0003: the call's queue visits, and the actual wrap-up of each agent's part
-- of a call from its WRAPUPEND event. Same meaning as
-- migrations/sqlite/0003_visits_wrapup.sql.
ALTER TABLE cdr ADD COLUMN visits TEXT NOT NULL DEFAULT '';

CREATE TABLE cdr_wrapup (
    event_id TEXT   NOT NULL PRIMARY KEY,
    call_id  TEXT   NOT NULL,
    wrap_us  BIGINT NOT NULL
);
CREATE INDEX cdr_wrapup_call ON cdr_wrapup (call_id);

DROP INDEX cdr_report;
CREATE INDEX cdr_report ON cdr (start_at) INCLUDE (end_at, enqueue_at, connect_at, talk_us, hold_us, wrap_us,
    transfers, queue, agent, disposition, direction, satisfaction, visits);
