-- Calls: the storage primitive. The view columns (kind, evaluation, model, run_id) are derived
-- from attributes and inputs on write, so the list endpoints read indexes, not JSON.
CREATE TABLE IF NOT EXISTS calls (
    project_id   TEXT NOT NULL,
    id           TEXT NOT NULL,
    trace_id     TEXT NOT NULL,
    parent_id    TEXT,
    op_name      TEXT NOT NULL,
    display_name TEXT,
    started_at   INTEGER NOT NULL,
    ended_at     INTEGER,
    exception    TEXT,
    attributes   TEXT NOT NULL,
    inputs       TEXT NOT NULL,
    output       TEXT,
    summary      TEXT,
    wb_user_id   TEXT,
    deleted_at   INTEGER,
    kind         TEXT,
    evaluation   TEXT,
    model        TEXT,
    run_id       TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS calls_id ON calls (project_id, id);
-- The list order, covering the filter columns so a filtered scan reads no table rows.
CREATE INDEX IF NOT EXISTS calls_runs ON calls (project_id, started_at, id, model, evaluation)
    WHERE kind = 'run' AND deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS calls_runs_model ON calls (project_id, model, started_at, id)
    WHERE kind = 'run' AND deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS calls_runs_evaluation ON calls (project_id, evaluation, started_at, id)
    WHERE kind = 'run' AND deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS calls_views ON calls (project_id, kind, run_id, started_at, id)
    WHERE kind IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS calls_children ON calls (project_id, parent_id, started_at)
    WHERE parent_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS calls_failed ON calls (project_id, trace_id)
    WHERE exception IS NOT NULL AND deleted_at IS NULL;

-- API keys: only the hash of each secret is kept.
CREATE TABLE IF NOT EXISTS api_keys (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    entities   TEXT NOT NULL,
    admin      INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
