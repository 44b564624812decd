-- 0001: outbound campaigns (云回访) and their targets, beside the call records.
-- Times are INTEGER microseconds since the Unix epoch (UTC), NULL when unset.
-- settings holds the campaign's configuration (window, pacing, retries,
-- do-not-call list...) as JSON.
CREATE TABLE campaigns (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL DEFAULT '',
    state      TEXT    NOT NULL,
    created_us INTEGER NOT NULL,
    settings   TEXT    NOT NULL DEFAULT '{}'
);

CREATE INDEX campaigns_created ON campaigns (created_us);

CREATE TABLE campaign_targets (
    campaign     TEXT    NOT NULL,
    case_id      TEXT    NOT NULL,
    phone        TEXT    NOT NULL,
    queue        TEXT    NOT NULL DEFAULT '',
    agent        TEXT    NOT NULL DEFAULT '',
    call_id      TEXT    NOT NULL DEFAULT '',
    closed_us    INTEGER,
    deadline_us  INTEGER,
    state        TEXT    NOT NULL,
    outcome      TEXT    NOT NULL DEFAULT '',
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_us      INTEGER,
    last_call    TEXT    NOT NULL DEFAULT '',
    satisfaction TEXT    NOT NULL DEFAULT '',
    answers      TEXT    NOT NULL DEFAULT '',
    reached_us   INTEGER,
    reached_by   TEXT    NOT NULL DEFAULT '',
    human        TEXT    NOT NULL DEFAULT '',
    human_agent  TEXT    NOT NULL DEFAULT '',
    human_tries  INTEGER NOT NULL DEFAULT 0,
    updated_us   INTEGER,
    PRIMARY KEY (campaign, case_id)
) WITHOUT ROWID;

-- Due: the pending targets of a campaign, earliest deadline first (no
-- deadline last), then case id, with next_us in the index so that targets
-- waiting for a retry are skipped without reading the row. It also serves
-- Counts and InState (campaign, state).
CREATE INDEX campaign_targets_due ON campaign_targets
    (campaign, state, COALESCE(deadline_us, 9223372036854775807), case_id, next_us);
