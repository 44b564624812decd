-- 0004: outbound detail of survey and callback records (云回访): the
-- campaign, the attempt number, the target (case id) the call is for, and
-- the parent (the inbound call that asked for a callback, virtual hold).
-- Empty (0) on inbound calls.
ALTER TABLE cdr ADD COLUMN campaign TEXT    NOT NULL DEFAULT '';
ALTER TABLE cdr ADD COLUMN attempt  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cdr ADD COLUMN target   TEXT    NOT NULL DEFAULT '';
ALTER TABLE cdr ADD COLUMN parent   TEXT    NOT NULL DEFAULT '';

-- The report also reads target and parent (the outbound section): keep its
-- scan index-only.
DROP INDEX cdr_report;
CREATE INDEX cdr_report ON cdr (start_us, end_us, enqueue_us, connect_us, talk_us, hold_us, wrap_us,
    transfers, queue, agent, disposition, direction, satisfaction, visits, target, parent);
