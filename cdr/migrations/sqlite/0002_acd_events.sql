-- 0002: ACD detail on the call record, and the agent-event log (queue_log).
-- Durations are INTEGER microseconds.
ALTER TABLE cdr ADD COLUMN ring_attempts  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cdr ADD COLUMN talk_us        INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cdr ADD COLUMN hold_us        INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cdr ADD COLUMN wrap_us        INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cdr ADD COLUMN transfers      INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cdr ADD COLUMN recording_file TEXT    NOT NULL DEFAULT '';
ALTER TABLE cdr ADD COLUMN survey_answers TEXT    NOT NULL DEFAULT '';
ALTER TABLE cdr ADD COLUMN satisfaction   TEXT    NOT NULL DEFAULT '';

-- The per-agent figures of a report read agent rows by time.
CREATE INDEX cdr_agent ON cdr (agent, start_us);
-- Covers the report's query (ReportFromStore): a report over a period is
-- an index-only range scan, with no look-up into the table per call.
CREATE INDEX cdr_report ON cdr (start_us, end_us, enqueue_us, connect_us, talk_us, hold_us, wrap_us,
    transfers, queue, agent, disposition, direction, satisfaction);

CREATE TABLE agent_events (
    id       TEXT    NOT NULL PRIMARY KEY,
    time_us  INTEGER NOT NULL,
    call_id  TEXT    NOT NULL DEFAULT '',
    queue    TEXT    NOT NULL DEFAULT '',
    agent_id TEXT    NOT NULL DEFAULT '',
    event    TEXT    NOT NULL,
    data1    TEXT    NOT NULL DEFAULT '',
    data2    TEXT    NOT NULL DEFAULT '',
    data3    TEXT    NOT NULL DEFAULT '',
    data4    TEXT    NOT NULL DEFAULT '',
    data5    TEXT    NOT NULL DEFAULT '',
    node_id  TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX agent_events_time  ON agent_events (time_us);
CREATE INDEX agent_events_agent ON agent_events (agent_id, time_us);
CREATE INDEX agent_events_event ON agent_events (event, time_us);
CREATE INDEX agent_events_call  ON agent_events (call_id);
