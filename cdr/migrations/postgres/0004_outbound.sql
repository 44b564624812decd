-- 0004: outbound detail of survey and callback records (云回访). Same
-- meaning as migrations/sqlite/0004_outbound.sql.
ALTER TABLE cdr ADD COLUMN campaign TEXT    NOT NULL DEFAULT '';
ALTER TABLE cdr ADD COLUMN attempt  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cdr ADD COLUMN target   TEXT    NOT NULL DEFAULT '';
ALTER TABLE cdr ADD COLUMN parent   TEXT    NOT NULL DEFAULT '';

DROP INDEX cdr_report;
CREATE INDEX cdr_report ON cdr (start_at) INCLUDE (end_at, enqueue_at, connect_at, talk_us, hold_us, wrap_us,
    transfers, queue, agent, disposition, direction, satisfaction, visits, target, parent);
