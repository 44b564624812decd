-- 0003: the call's queue visits, and the actual wrap-up of each agent's part
-- of a call from its WRAPUPEND event (cdr.wrap_us is their sum once one is
-- stored, whether the record or the event is stored first).
ALTER TABLE cdr ADD COLUMN visits TEXT NOT NULL DEFAULT '';

CREATE TABLE cdr_wrapup (
    event_id TEXT    NOT NULL PRIMARY KEY, -- the WRAPUPEND event: replays add nothing
    call_id  TEXT    NOT NULL,
    wrap_us  INTEGER NOT NULL
);
CREATE INDEX cdr_wrapup_call ON cdr_wrapup (call_id);

-- The report also reads visits (a queue filter keeps the calls that visited
-- the queue): keep its scan index-only.
DROP INDEX cdr_report;
CREATE INDEX cdr_report ON cdr (start_us, end_us, enqueue_us, connect_us, talk_us, hold_us, wrap_us,
    transfers, queue, agent, disposition, direction, satisfaction, visits);
