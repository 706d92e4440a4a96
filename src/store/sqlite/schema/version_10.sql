-- The calls table and its indexes as schema version 10 had them (op names and user ids as
-- text; runs by id in `calls_runs_ids`): what the upgrade tests make a store's calls table
-- again.
CREATE TABLE calls (
    project_id   INTEGER NOT NULL,
    id           TEXT NOT NULL,
    trace_id     TEXT NOT NULL,
    parent_id    TEXT,
    op_name      TEXT NOT NULL,
    display_name TEXT,
    started_at   INTEGER NOT NULL,
    ended_at     INTEGER,
    exception    TEXT,
    attributes   TEXT NOT NULL, -- JSON text, or packed (a BLOB; see `packed.rs`)
    inputs       TEXT NOT NULL, -- the same
    output       TEXT,
    summary      TEXT,
    wb_user_id   TEXT,
    deleted_at   INTEGER,
    kind         INTEGER,
    evaluation   INTEGER,
    model        INTEGER,
    run_id       TEXT,
    logged_run   INTEGER NOT NULL DEFAULT 0,
    thread_id    TEXT,
    turn_id      TEXT,
    wb_run_id    TEXT,
    wb_run_step  INTEGER,
    wb_run_step_end INTEGER
);
CREATE UNIQUE INDEX calls_id ON calls (project_id, id);
CREATE INDEX calls_runs ON calls (project_id, started_at, id)
    WHERE kind = 1 AND deleted_at IS NULL;
CREATE INDEX calls_runs_rows ON calls (project_id, started_at, id, trace_id,
    evaluation, model, run_id, display_name, op_name, ended_at, exception IS NOT NULL,
    logged_run, summary, output)
    WHERE kind = 1 AND deleted_at IS NULL;
CREATE INDEX calls_runs_model ON calls (project_id, model, started_at, id)
    WHERE kind = 1 AND deleted_at IS NULL;
CREATE INDEX calls_runs_evaluation ON calls (project_id, evaluation, started_at, id)
    WHERE kind = 1 AND deleted_at IS NULL;
CREATE INDEX calls_runs_pairs ON calls (project_id, evaluation, model, started_at, id)
    WHERE kind = 1 AND deleted_at IS NULL;
CREATE INDEX calls_runs_ids ON calls (id, project_id)
    WHERE kind = 1 AND deleted_at IS NULL;
CREATE INDEX calls_views ON calls (project_id, kind, run_id, started_at, id)
    WHERE (kind = 2 OR kind = 3) AND deleted_at IS NULL;
CREATE INDEX calls_view_order ON calls (project_id, kind, started_at, id)
    WHERE (kind = 2 OR kind = 3) AND deleted_at IS NULL;
CREATE INDEX calls_children ON calls (project_id, parent_id, started_at)
    WHERE parent_id IS NOT NULL;
CREATE INDEX calls_threads ON calls (project_id, thread_id, started_at)
    WHERE thread_id IS NOT NULL;
CREATE INDEX calls_failed ON calls (project_id, trace_id)
    WHERE exception IS NOT NULL AND deleted_at IS NULL;
