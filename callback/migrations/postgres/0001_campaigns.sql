-- 0001: outbound campaigns (云回访) and their targets, beside the call records.
-- Mirrors migrations/sqlite/ with timestamptz for times (*_us there, *_at
-- here). settings holds the campaign's configuration (window, pacing,
-- retries, do-not-call list...) as JSON. Case ids sort bytewise (COLLATE
-- "C"), as in SQLite.
CREATE TABLE campaigns (
    id         TEXT        NOT NULL PRIMARY KEY,
    name       TEXT        NOT NULL DEFAULT '',
    state      TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    settings   JSONB       NOT NULL DEFAULT '{}'
);

CREATE INDEX campaigns_created ON campaigns (created_at);

CREATE TABLE campaign_targets (
    campaign     TEXT        NOT NULL,
    case_id      TEXT        COLLATE "C" NOT NULL,
    phone        TEXT        NOT NULL,
    queue        TEXT        NOT NULL DEFAULT '',
    agent        TEXT        NOT NULL DEFAULT '',
    call_id      TEXT        NOT NULL DEFAULT '',
    closed_at    TIMESTAMPTZ,
    deadline_at  TIMESTAMPTZ,
    state        TEXT        NOT NULL,
    outcome      TEXT        NOT NULL DEFAULT '',
    attempts     INTEGER     NOT NULL DEFAULT 0,
    next_at      TIMESTAMPTZ,
    last_call    TEXT        NOT NULL DEFAULT '',
    satisfaction TEXT        NOT NULL DEFAULT '',
    answers      TEXT        NOT NULL DEFAULT '',
    reached_at   TIMESTAMPTZ,
    reached_by   TEXT        NOT NULL DEFAULT '',
    human        TEXT        NOT NULL DEFAULT '',
    human_agent  TEXT        NOT NULL DEFAULT '',
    human_tries  INTEGER     NOT NULL DEFAULT 0,
    updated_at   TIMESTAMPTZ,
    PRIMARY KEY (campaign, case_id)
);

-- Due: the pending targets of a campaign, earliest deadline first (NULLS
-- LAST is the default of ASC), then case id, with next_at in the index so
-- that targets waiting for a retry are skipped from the index. It also
-- serves Counts and InState (campaign, state).
CREATE INDEX campaign_targets_due ON campaign_targets
    (campaign, state, deadline_at, case_id, next_at);
