-- The schema of compliance-store-sqlite.
--
-- Conventions: ids are UUIDv7 as 16-byte BLOBs (byte order is creation order); times are
-- INTEGER nanoseconds since the Unix epoch, UTC; enums are stored in their wire spelling
-- except issue category and severity, stored as small integers so that the issue list can be
-- ordered by an index (category: 0 licensing, 1 vulnerability, 2 quality; severity:
-- 0 critical, 1 high, 2 medium, 3 low, 4 unknown). `*_folded` columns hold the Unicode
-- lower-case form of a name, for case-insensitive search without an ICU build of SQLite.
--
-- Links between events, jobs and scan results are plain columns, not foreign keys: retention
-- prunes events and finished jobs independently, and a pruned job must not take the scan
-- result (or the component's `last_sync_job_id`) that it produced with it.

CREATE TABLE components (
    id                    BLOB PRIMARY KEY NOT NULL,
    name                  TEXT NOT NULL,
    name_folded           TEXT NOT NULL,
    repository_url        TEXT NOT NULL,
    repository_key        TEXT NOT NULL UNIQUE,
    fossa_locator         TEXT NOT NULL,
    default_branch        TEXT NOT NULL,
    compliance_status     TEXT NOT NULL DEFAULT 'UNKNOWN'
                          CHECK (compliance_status IN ('UNKNOWN', 'PASSING', 'FAILING')),
    last_synced_at        INTEGER,
    last_scan_at          INTEGER,
    last_revision         TEXT,
    last_sync_job_id      BLOB,
    created_at            INTEGER NOT NULL,
    -- Counts of the current data, written by each applied snapshot, so that the component list
    -- reads one row per component.
    issues_total          INTEGER NOT NULL DEFAULT 0,
    issues_licensing      INTEGER NOT NULL DEFAULT 0,
    issues_vulnerability  INTEGER NOT NULL DEFAULT 0,
    issues_quality        INTEGER NOT NULL DEFAULT 0,
    issues_critical       INTEGER NOT NULL DEFAULT 0,
    issues_high           INTEGER NOT NULL DEFAULT 0,
    issues_medium         INTEGER NOT NULL DEFAULT 0,
    issues_low            INTEGER NOT NULL DEFAULT 0,
    issues_unknown        INTEGER NOT NULL DEFAULT 0,
    dependencies_total    INTEGER NOT NULL DEFAULT 0,
    dependencies_direct   INTEGER NOT NULL DEFAULT 0
);
-- Component list (ordered by name), with or without a status filter.
CREATE INDEX components_by_name ON components (name, id);
CREATE INDEX components_by_status ON components (compliance_status, name, id);
-- Scheduler: components whose last sync is oldest (never-synced first).
CREATE INDEX components_by_last_sync ON components (last_synced_at, id);

CREATE TABLE webhook_events (
    id                 BLOB PRIMARY KEY NOT NULL,
    event_type         TEXT,
    source_ip          TEXT,
    source_system      TEXT,
    raw_payload        TEXT NOT NULL,
    payload_truncated  INTEGER NOT NULL,
    signature          TEXT,
    signature_valid    INTEGER NOT NULL,
    processing_status  TEXT NOT NULL
                       CHECK (processing_status IN ('RECEIVED', 'QUEUED', 'PROCESSED', 'FAILED')),
    rejection          TEXT,
    http_status        INTEGER NOT NULL,
    component_id       BLOB REFERENCES components (id) ON DELETE SET NULL,
    sync_job_id        BLOB,
    repository_url     TEXT,
    revision           TEXT,
    branch             TEXT,
    pipeline_id        TEXT,
    pipeline_url       TEXT,
    actor              TEXT,
    delivery_key       TEXT,
    -- 1 for events written by record_accepted: the only ones redelivery detection matches.
    accepted           INTEGER NOT NULL DEFAULT 0,
    received_at        INTEGER NOT NULL,
    processed_at       INTEGER,
    error_message      TEXT
);
-- At most one accepted event per signed delivery, also against a second process.
CREATE UNIQUE INDEX webhook_events_delivery ON webhook_events (delivery_key)
    WHERE accepted = 1 AND delivery_key IS NOT NULL;
-- Event log, newest first, unfiltered / by component / by status; retention by age.
CREATE INDEX webhook_events_by_time ON webhook_events (received_at, id);
CREATE INDEX webhook_events_by_component ON webhook_events (component_id, received_at, id);
CREATE INDEX webhook_events_by_status ON webhook_events (processing_status, received_at, id);

CREATE TABLE sync_jobs (
    id                   BLOB PRIMARY KEY NOT NULL,
    component_id         BLOB NOT NULL REFERENCES components (id) ON DELETE CASCADE,
    trigger              TEXT NOT NULL CHECK (trigger IN ('WEBHOOK', 'MANUAL', 'SCHEDULED')),
    webhook_event_id     BLOB,
    status               TEXT NOT NULL
                         CHECK (status IN ('QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'SUPERSEDED')),
    revision             TEXT,
    branch               TEXT NOT NULL,
    scan_completed_at    INTEGER,
    queued_at            INTEGER NOT NULL,
    started_at           INTEGER,
    completed_at         INTEGER,
    heartbeat_at         INTEGER,
    attempts             INTEGER NOT NULL DEFAULT 0,
    next_attempt_at      INTEGER,
    issues_synced        INTEGER,
    dependencies_synced  INTEGER,
    new_issues           INTEGER,
    resolved_issues      INTEGER,
    superseded_by        BLOB,
    error_message        TEXT
);
-- Coalescing (the pending job of a component and branch) and the Busy check of `start`.
CREATE INDEX sync_jobs_queued ON sync_jobs (component_id, branch) WHERE status = 'QUEUED';
CREATE INDEX sync_jobs_running ON sync_jobs (component_id, branch) WHERE status = 'RUNNING';
-- Sync history newest first: all jobs, per component, per status; active-job counts.
CREATE INDEX sync_jobs_by_time ON sync_jobs (queued_at, id);
CREATE INDEX sync_jobs_by_component ON sync_jobs (component_id, queued_at, id);
CREATE INDEX sync_jobs_by_status ON sync_jobs (status, queued_at, id);
-- Sweeper: queued jobs by due time.
CREATE INDEX sync_jobs_due ON sync_jobs (coalesce(next_attempt_at, queued_at), id)
    WHERE status = 'QUEUED';
-- Retention: finished jobs by end time.
CREATE INDEX sync_jobs_finished ON sync_jobs (completed_at)
    WHERE status IN ('COMPLETED', 'FAILED', 'SUPERSEDED');

CREATE TABLE scan_results (
    id                   BLOB PRIMARY KEY NOT NULL,
    component_id         BLOB NOT NULL REFERENCES components (id) ON DELETE CASCADE,
    sync_job_id          BLOB NOT NULL,
    revision             TEXT NOT NULL,
    branch               TEXT NOT NULL,
    scanned_at           INTEGER,
    synced_at            INTEGER NOT NULL,
    total_dependencies   INTEGER NOT NULL,
    direct_dependencies  INTEGER NOT NULL,
    issues_count         INTEGER NOT NULL,
    overall_status       TEXT NOT NULL,
    project_title        TEXT NOT NULL
);
CREATE INDEX scan_results_by_component ON scan_results (component_id, synced_at, id);

CREATE TABLE issues (
    component_id     BLOB NOT NULL REFERENCES components (id) ON DELETE CASCADE,
    category         INTEGER NOT NULL CHECK (category BETWEEN 0 AND 2),
    fossa_id         TEXT NOT NULL,
    issue_type       TEXT NOT NULL,
    severity         INTEGER NOT NULL CHECK (severity BETWEEN 0 AND 4),
    title            TEXT NOT NULL,
    title_folded     TEXT NOT NULL,
    package_name     TEXT NOT NULL,
    package_folded   TEXT NOT NULL,
    package_version  TEXT,
    package_locator  TEXT,
    package_manager  TEXT,
    license          TEXT,
    cve              TEXT,
    cvss             REAL,
    direct           INTEGER NOT NULL,
    detected_at      INTEGER,
    url              TEXT,
    status           TEXT NOT NULL CHECK (status IN ('ACTIVE', 'RESOLVED')),
    first_seen_at    INTEGER NOT NULL,
    resolved_at      INTEGER,
    scan_result_id   BLOB NOT NULL REFERENCES scan_results (id),
    PRIMARY KEY (component_id, category, fossa_id)
);
-- Issue list in its order (severity, then key). A component's issues are few enough that
-- status filters (resolve-the-rest, the active set) scan them by the primary key's prefix.
CREATE INDEX issues_by_severity ON issues (component_id, severity, category, fossa_id);

CREATE TABLE dependencies (
    component_id       BLOB NOT NULL REFERENCES components (id) ON DELETE CASCADE,
    locator            TEXT NOT NULL,
    name               TEXT NOT NULL,
    name_folded        TEXT NOT NULL,
    version            TEXT,
    package_manager    TEXT NOT NULL,
    is_direct          INTEGER NOT NULL,
    depth              INTEGER NOT NULL,
    -- JSON array of distinct, sorted license ids.
    licenses           TEXT NOT NULL,
    license_expression TEXT,
    -- The scan result that last saw it (each apply upserts, then deletes the others).
    scan_result_id     BLOB NOT NULL,
    -- Keyed in list order (name, then locator) so that the list and the replace-all delete
    -- walk one b-tree; locators are made distinct before they are written.
    PRIMARY KEY (component_id, name, locator)
) WITHOUT ROWID;

-- Dependencies per license of the current data (NULL: no license found), written by each
-- applied snapshot, so that the compliance view never walks every dependency's licenses.
CREATE TABLE component_licenses (
    component_id  BLOB NOT NULL REFERENCES components (id) ON DELETE CASCADE,
    license       TEXT,
    count         INTEGER NOT NULL
);
CREATE INDEX component_licenses_by_component ON component_licenses (component_id);

-- The in-store job queue. `visible_at` is when the entry may be reserved next: the retry time
-- while it waits, the end of the lease while a worker holds it (so an expired lease makes it
-- ready again by itself). `seq` orders entries that become ready at the same time.
CREATE TABLE queue_entries (
    seq          INTEGER PRIMARY KEY,
    -- No foreign key: the queue also serves jobs it is told about by `enqueue` alone.
    job_id       BLOB NOT NULL UNIQUE,
    visible_at   INTEGER NOT NULL,
    deliveries   INTEGER NOT NULL DEFAULT 0,
    lease_token  TEXT,
    worker       TEXT,
    dead_at      INTEGER,
    dead_reason  TEXT
);
CREATE INDEX queue_entries_ready ON queue_entries (visible_at, seq) WHERE dead_at IS NULL;
CREATE INDEX queue_entries_dead ON queue_entries (dead_at, seq) WHERE dead_at IS NOT NULL;
