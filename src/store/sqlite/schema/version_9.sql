-- The calls table and its indexes as schema version 9 had them (text project ids, evaluation
-- and model refs as text): what the upgrade tests make a store's calls table again.
CREATE TABLE calls (
    project_id   TEXT NOT NULL,
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
    kind         TEXT,
    evaluation   TEXT,
    model        TEXT,
    run_id       TEXT,
    logged_run   INTEGER NOT NULL DEFAULT 0,
    thread_id    TEXT,
    turn_id      TEXT,
    wb_run_id    TEXT,
    wb_run_step  INTEGER,
    wb_run_step_end INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS calls_id ON calls (project_id, id);
-- The list order; filtered lists merge ranges of the per-model and per-evaluation indexes.
CREATE INDEX IF NOT EXISTS calls_runs ON calls (project_id, started_at, id)
    WHERE kind = 'run' AND deleted_at IS NULL;
-- Every column a listed run shows, in list order: an unfiltered list reads this index alone,
-- a few runs to a page, instead of one table page per run. Pages far from the start are
-- found through the narrow `calls_runs`, which skips many more entries per page read.
CREATE INDEX IF NOT EXISTS calls_runs_rows ON calls (project_id, started_at, id, trace_id,
    evaluation, model, run_id, display_name, op_name, ended_at, exception IS NOT NULL,
    logged_run, summary, output)
    WHERE kind = 'run' AND deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS calls_runs_model ON calls (project_id, model, started_at, id)
    WHERE kind = 'run' AND deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS calls_runs_evaluation ON calls (project_id, evaluation, started_at, id)
    WHERE kind = 'run' AND deleted_at IS NULL;
-- The runs of one (evaluation, model) pair in start order: the leaderboard reads the newest of
-- each pair with one seek, and a list filtered by one evaluation and one model one range.
CREATE INDEX IF NOT EXISTS calls_runs_pairs ON calls (project_id, evaluation, model, started_at, id)
    WHERE kind = 'run' AND deleted_at IS NULL;
-- Runs by id, for lookups: the id decides most key comparisons, in a tree of runs only.
CREATE INDEX IF NOT EXISTS calls_runs_ids ON calls (id, project_id)
    WHERE kind = 'run' AND deleted_at IS NULL;
-- The prediction and score lists (runs are listed through the indexes above). Their queries
-- name the kind as a literal, which the planner needs to choose a partial index.
CREATE INDEX IF NOT EXISTS calls_views ON calls (project_id, kind, run_id, started_at, id)
    WHERE (kind = 'prediction' OR kind = 'score') AND deleted_at IS NULL;
-- The prediction and score lists of a whole project in list order: a page is one range, from
-- the start or past a cursor.
CREATE INDEX IF NOT EXISTS calls_view_order ON calls (project_id, kind, started_at, id)
    WHERE (kind = 'prediction' OR kind = 'score') AND deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS calls_children ON calls (project_id, parent_id, started_at)
    WHERE parent_id IS NOT NULL;
-- The calls of a thread (conversation), for thread filters and the thread list.
CREATE INDEX IF NOT EXISTS calls_threads ON calls (project_id, thread_id, started_at)
    WHERE thread_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS calls_failed ON calls (project_id, trace_id)
    WHERE exception IS NOT NULL AND deleted_at IS NULL;
