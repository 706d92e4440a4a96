-- Integer keys of what the calls table repeats (see `interned.rs`): the names of projects;
-- the evaluation and model refs of runs, per project; calls' op names and user ids, per
-- project. Never changed nor deleted: a call's row holds the keys.
CREATE TABLE IF NOT EXISTS projects (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS run_refs (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    ref        TEXT NOT NULL,
    UNIQUE (project_id, ref)
);
CREATE TABLE IF NOT EXISTS call_names (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    name       TEXT NOT NULL,
    UNIQUE (project_id, name)
);

-- Calls: the storage primitive. The view columns (kind, evaluation, model, run_id) are derived
-- from attributes and inputs on write, so the list endpoints read indexes, not JSON. The call
-- ids (id, trace_id, parent_id, run_id, turn_id) hold a canonical UUID as its 16 bytes (a BLOB),
-- any other id as TEXT (see `ids.rs`); predictions and scores keep no model. `project_id` is
-- the project's key in `projects`, `evaluation` and `model` keys in `run_refs`, `op_name` and
-- `wb_user_id` keys in `call_names`, read as text through `weft_name` (INTEGER: a TEXT column
-- would store a key as text). `kind` is a code (`rows::kind_code`): 1 a run,
-- 2 a prediction, 3 a score, NULL any other call; the partial indexes' conditions and the
-- statements that must use them name the codes as literals.
CREATE TABLE IF NOT EXISTS calls (
    project_id   INTEGER NOT NULL,
    id           TEXT NOT NULL,
    trace_id     TEXT NOT NULL,
    parent_id    TEXT,
    op_name      INTEGER NOT NULL,
    display_name TEXT,
    started_at   INTEGER NOT NULL,
    ended_at     INTEGER,
    exception    TEXT,
    attributes   TEXT NOT NULL, -- JSON text, or packed (a BLOB; see `packed.rs`)
    inputs       TEXT NOT NULL, -- the same
    output       TEXT,
    summary      TEXT,
    wb_user_id   INTEGER,
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
-- Calls by id, runs too: a lookup of runs by id checks the run conditions on the row it
-- reads anyway.
CREATE UNIQUE INDEX IF NOT EXISTS calls_id ON calls (project_id, id);
-- The list order; filtered lists merge ranges of the per-model and per-evaluation indexes.
CREATE INDEX IF NOT EXISTS calls_runs ON calls (project_id, started_at, id)
    WHERE kind = 1 AND deleted_at IS NULL;
-- Every column a listed run shows, in list order: an unfiltered list reads this index alone,
-- a few runs to a page, instead of one table page per run. Pages far from the start are
-- found through the narrow `calls_runs`, which skips many more entries per page read.
CREATE INDEX IF NOT EXISTS calls_runs_rows ON calls (project_id, started_at, id, trace_id,
    evaluation, model, run_id, display_name, op_name, ended_at, exception IS NOT NULL,
    logged_run, summary, output)
    WHERE kind = 1 AND deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS calls_runs_model ON calls (project_id, model, started_at, id)
    WHERE kind = 1 AND deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS calls_runs_evaluation ON calls (project_id, evaluation, started_at, id)
    WHERE kind = 1 AND deleted_at IS NULL;
-- The runs of one (evaluation, model) pair in start order: the leaderboard reads the newest of
-- each pair with one seek, and a list filtered by one evaluation and one model one range.
CREATE INDEX IF NOT EXISTS calls_runs_pairs ON calls (project_id, evaluation, model, started_at, id)
    WHERE kind = 1 AND deleted_at IS NULL;
-- The prediction and score lists (runs are listed through the indexes above). Their queries
-- name the kind as a literal, which the planner needs to choose a partial index.
CREATE INDEX IF NOT EXISTS calls_views ON calls (project_id, kind, run_id, started_at, id)
    WHERE (kind = 2 OR kind = 3) AND deleted_at IS NULL;
-- The prediction and score lists of a whole project in list order: a page is one range, from
-- the start or past a cursor.
CREATE INDEX IF NOT EXISTS calls_view_order ON calls (project_id, kind, started_at, id)
    WHERE (kind = 2 OR kind = 3) AND deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS calls_children ON calls (project_id, parent_id, started_at)
    WHERE parent_id IS NOT NULL;
-- The calls of a thread (conversation), for thread filters and the thread list.
CREATE INDEX IF NOT EXISTS calls_threads ON calls (project_id, thread_id, started_at)
    WHERE thread_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS calls_failed ON calls (project_id, trace_id)
    WHERE exception IS NOT NULL AND deleted_at IS NULL;

-- The zstd dictionaries `attributes` and `inputs` of calls are packed with, one per project
-- once it has calls enough to train one on (see `packed.rs`). Never changed nor deleted: a
-- packed value names its dictionary by id.
CREATE TABLE IF NOT EXISTS json_dicts (
    id         INTEGER PRIMARY KEY,
    project_id TEXT NOT NULL,
    dict       BLOB NOT NULL
);

-- API keys: only the hash of each secret is kept.
CREATE TABLE IF NOT EXISTS api_keys (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    entities   TEXT NOT NULL,
    admin      INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

-- Content-addressed objects (ops included), versioned per object id.
CREATE TABLE IF NOT EXISTS objects (
    project_id        TEXT NOT NULL,
    object_id         TEXT NOT NULL,
    digest            TEXT NOT NULL,
    version_index     INTEGER NOT NULL,
    kind              TEXT NOT NULL,
    base_object_class TEXT,
    leaf_object_class TEXT,
    val               TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    wb_user_id        TEXT,
    deleted_at        INTEGER,
    PRIMARY KEY (project_id, object_id, digest)
);
CREATE INDEX IF NOT EXISTS objects_versions ON objects (project_id, object_id, version_index);

-- Tags of object versions, and aliases naming them (an alias names one version of its object).
-- Deleting a version drops its tags and the aliases naming it.
CREATE TABLE IF NOT EXISTS object_tags (
    project_id TEXT NOT NULL,
    object_id  TEXT NOT NULL,
    digest     TEXT NOT NULL,
    tag        TEXT NOT NULL,
    PRIMARY KEY (project_id, object_id, digest, tag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS object_tags_names ON object_tags (project_id, tag);
CREATE TABLE IF NOT EXISTS object_aliases (
    project_id TEXT NOT NULL,
    object_id  TEXT NOT NULL,
    alias      TEXT NOT NULL,
    digest     TEXT NOT NULL,
    PRIMARY KEY (project_id, object_id, alias)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS object_aliases_names ON object_aliases (project_id, alias);

-- Tables: content-addressed rows, and each table's ordered list of row digests.
CREATE TABLE IF NOT EXISTS table_rows (
    project_id TEXT NOT NULL,
    digest     TEXT NOT NULL,
    val        TEXT NOT NULL,
    PRIMARY KEY (project_id, digest)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tables (
    project_id  TEXT NOT NULL,
    digest      TEXT NOT NULL,
    row_digests TEXT NOT NULL,
    PRIMARY KEY (project_id, digest)
) WITHOUT ROWID;

-- Files (e.g. an op's source), content-addressed.
CREATE TABLE IF NOT EXISTS files (
    project_id TEXT NOT NULL,
    digest     TEXT NOT NULL,
    content    BLOB NOT NULL,
    PRIMARY KEY (project_id, digest)
) WITHOUT ROWID;

-- Feedback on calls and objects (scores, reactions, notes).
CREATE TABLE IF NOT EXISTS feedback (
    project_id     TEXT NOT NULL,
    id             TEXT NOT NULL,
    weave_ref      TEXT NOT NULL,
    feedback_type  TEXT NOT NULL,
    payload        TEXT NOT NULL,
    creator        TEXT,
    created_at     INTEGER NOT NULL,
    wb_user_id     TEXT,
    annotation_ref TEXT,
    runnable_ref   TEXT,
    call_ref       TEXT,
    trigger_ref    TEXT,
    PRIMARY KEY (project_id, id)
);
CREATE INDEX IF NOT EXISTS feedback_refs ON feedback (project_id, weave_ref);

-- LLM token prices per project (`cost/create`), which price calls' usage (`include_costs`).
CREATE TABLE IF NOT EXISTS llm_token_prices (
    project_id                      TEXT NOT NULL,
    id                              TEXT NOT NULL,
    llm_id                          TEXT NOT NULL,
    provider_id                     TEXT NOT NULL,
    effective_date                  INTEGER NOT NULL,
    prompt_token_cost               REAL NOT NULL,
    completion_token_cost           REAL NOT NULL,
    cache_read_input_token_cost     REAL NOT NULL,
    cache_creation_input_token_cost REAL NOT NULL,
    prompt_token_cost_unit          TEXT NOT NULL,
    completion_token_cost_unit      TEXT NOT NULL,
    created_by                      TEXT,
    created_at                      INTEGER NOT NULL,
    PRIMARY KEY (project_id, id)
);

-- Web UI sessions: the hash of each token, the hash of the key it acts with, its CSRF token.
CREATE TABLE IF NOT EXISTS ui_sessions (
    hash       TEXT PRIMARY KEY,
    key_hash   TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    ended_at   INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ui_sessions_expiry ON ui_sessions (expires_at);
