-- 0002: ACD detail on the call record, and the agent-event log (queue_log).
-- Same meaning as migrations/sqlite/0002_acd_events.sql; durations are
-- BIGINT microseconds, times timestamptz.
ALTER TABLE cdr
    ADD COLUMN ring_attempts  INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN talk_us        BIGINT  NOT NULL DEFAULT 0,
    ADD COLUMN hold_us        BIGINT  NOT NULL DEFAULT 0,
    ADD COLUMN wrap_us        BIGINT  NOT NULL DEFAULT 0,
    ADD COLUMN transfers      INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN recording_file TEXT    NOT NULL DEFAULT '',
    ADD COLUMN survey_answers TEXT    NOT NULL DEFAULT '',
    ADD COLUMN satisfaction   TEXT    NOT NULL DEFAULT '';

CREATE INDEX cdr_agent ON cdr (agent, start_at);
-- Covers the report's query: an index-only range scan per period.
CREATE INDEX cdr_report ON cdr (start_at) INCLUDE (end_at, enqueue_at, connect_at, talk_us, hold_us, wrap_us,
    transfers, queue, agent, disposition, direction, satisfaction);

CREATE TABLE agent_events (
    id         TEXT        NOT NULL PRIMARY KEY,
    event_time TIMESTAMPTZ NOT NULL,
    call_id    TEXT        NOT NULL DEFAULT '',
    queue      TEXT        NOT NULL DEFAULT '',
    agent_id   TEXT        NOT NULL DEFAULT '',
    event      TEXT        NOT NULL,
    data1      TEXT        NOT NULL DEFAULT '',
    data2      TEXT        NOT NULL DEFAULT '',
    data3      TEXT        NOT NULL DEFAULT '',
    data4      TEXT        NOT NULL DEFAULT '',
    data5      TEXT        NOT NULL DEFAULT '',
    node_id    TEXT        NOT NULL DEFAULT ''
);

CREATE INDEX agent_events_time  ON agent_events (event_time);
CREATE INDEX agent_events_agent ON agent_events (agent_id, event_time);
CREATE INDEX agent_events_event ON agent_events (event, event_time);
CREATE INDEX agent_events_call  ON agent_events (call_id);
