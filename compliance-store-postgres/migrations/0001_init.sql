-- The schema of compliance-store-postgres, version 1.
--
-- Text columns whose order the API defines (names, ids, locators) use the "C" collation so that
-- PostgreSQL sorts them byte by byte, exactly as the in-memory reference does.
-- Status columns hold the domain's own spellings (`QUEUED`, `ACTIVE`, …).

CREATE TABLE components (
    id                uuid PRIMARY KEY,
    name              text COLLATE "C" NOT NULL,
    repository_url    text NOT NULL,
    repository_key    text NOT NULL,
    fossa_locator     text NOT NULL,
    default_branch    text NOT NULL,
    compliance_status text NOT NULL DEFAULT 'UNKNOWN',
    last_synced_at    timestamptz,
    last_scan_at      timestamptz,
    last_revision     text,
    last_sync_job_id  uuid,
    -- The scan result behind the current data: every ACTIVE issue was last seen by it.
    last_scan_result_id uuid,
    created_at        timestamptz NOT NULL,
    -- Figures of the current data, written with it by `apply_snapshot` so that the component
    -- list and the compliance view read one row instead of counting thousands.
    issues_total         integer NOT NULL DEFAULT 0,
    issues_licensing     integer NOT NULL DEFAULT 0,
    issues_vulnerability integer NOT NULL DEFAULT 0,
    issues_quality       integer NOT NULL DEFAULT 0,
    issues_critical      integer NOT NULL DEFAULT 0,
    issues_high          integer NOT NULL DEFAULT 0,
    issues_medium        integer NOT NULL DEFAULT 0,
    issues_low           integer NOT NULL DEFAULT 0,
    issues_unknown       integer NOT NULL DEFAULT 0,
    dependencies_total   integer NOT NULL DEFAULT 0,
    dependencies_direct  integer NOT NULL DEFAULT 0,
    -- [[license or null, count], …] of the current dependencies.
    license_counts       jsonb NOT NULL DEFAULT '[]',
    CONSTRAINT components_repository_key_key UNIQUE (repository_key)
);
CREATE INDEX components_by_name ON components (name, id);
CREATE INDEX components_by_last_sync ON components (last_synced_at NULLS FIRST, id);

CREATE TABLE webhook_events (
    id                uuid PRIMARY KEY,
    event_type        text,
    source_ip         text,
    source_system     text,
    raw_payload       text NOT NULL,
    payload_truncated boolean NOT NULL DEFAULT false,
    signature         text,
    signature_valid   boolean NOT NULL,
    processing_status text NOT NULL,
    rejection         text,
    http_status       smallint NOT NULL,
    component_id      uuid,
    sync_job_id       uuid,
    repository_url    text,
    revision          text,
    branch            text,
    pipeline_id       text,
    pipeline_url      text,
    actor             text,
    delivery_key      text,
    -- Written by `record_accepted`; only accepted events take part in redelivery detection.
    accepted          boolean NOT NULL DEFAULT false,
    received_at       timestamptz NOT NULL,
    processed_at      timestamptz,
    error_message     text
);
-- At most one accepted event per signed delivery, also across instances.
CREATE UNIQUE INDEX webhook_events_delivery_key ON webhook_events (delivery_key)
    WHERE accepted AND delivery_key IS NOT NULL;
CREATE INDEX webhook_events_by_received ON webhook_events (received_at DESC, id DESC);
CREATE INDEX webhook_events_by_component ON webhook_events (component_id, received_at DESC, id DESC)
    WHERE component_id IS NOT NULL;
CREATE INDEX webhook_events_by_status ON webhook_events (processing_status, received_at DESC, id DESC);

CREATE TABLE sync_jobs (
    id                  uuid PRIMARY KEY,
    component_id        uuid NOT NULL REFERENCES components (id) ON DELETE CASCADE,
    trigger             text NOT NULL,
    webhook_event_id    uuid,
    status              text NOT NULL,
    revision            text,
    branch              text NOT NULL,
    scan_completed_at   timestamptz,
    queued_at           timestamptz NOT NULL,
    started_at          timestamptz,
    completed_at        timestamptz,
    heartbeat_at        timestamptz,
    attempts            integer NOT NULL DEFAULT 0,
    next_attempt_at     timestamptz,
    issues_synced       integer,
    dependencies_synced integer,
    new_issues          integer,
    resolved_issues     integer,
    superseded_by       uuid,
    error_message       text
);
CREATE INDEX sync_jobs_by_queued ON sync_jobs (queued_at DESC, id DESC);
CREATE INDEX sync_jobs_by_component ON sync_jobs (component_id, queued_at DESC, id DESC);
-- Coalescing, `start`'s busy check and the active-job count only look at unfinished jobs.
CREATE INDEX sync_jobs_unfinished ON sync_jobs (component_id, branch, status)
    WHERE status IN ('QUEUED', 'RUNNING');
CREATE INDEX sync_jobs_due ON sync_jobs ((COALESCE(next_attempt_at, queued_at)), id)
    WHERE status = 'QUEUED';
CREATE INDEX sync_jobs_finished ON sync_jobs (completed_at)
    WHERE status IN ('COMPLETED', 'FAILED', 'SUPERSEDED');

-- The in-store job queue. `visible_at` is when the entry can next be reserved: the ready time
-- of a waiting entry, or the end of the lease of a reserved one (after which it is reclaimed).
-- No foreign key to sync_jobs: the queue is usable on its own and outlives pruned jobs.
CREATE TABLE queue_entries (
    job_id      uuid PRIMARY KEY,
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    visible_at  timestamptz NOT NULL,
    enqueued_at timestamptz NOT NULL,
    deliveries  integer NOT NULL DEFAULT 0,
    lease_token uuid,
    leased_by   text
);
CREATE INDEX queue_entries_by_visible ON queue_entries (visible_at, seq);

CREATE TABLE queue_dead_letters (
    job_id     uuid PRIMARY KEY,
    reason     text NOT NULL,
    deliveries integer NOT NULL,
    dead_at    timestamptz NOT NULL,
    seq        bigint GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX queue_dead_letters_by_dead_at ON queue_dead_letters (dead_at DESC, seq DESC);

CREATE TABLE scan_results (
    id                  uuid PRIMARY KEY,
    component_id        uuid NOT NULL REFERENCES components (id) ON DELETE CASCADE,
    sync_job_id         uuid NOT NULL,
    revision            text NOT NULL,
    branch              text NOT NULL,
    scanned_at          timestamptz,
    synced_at           timestamptz NOT NULL,
    total_dependencies  integer NOT NULL,
    direct_dependencies integer NOT NULL,
    issues_count        integer NOT NULL,
    overall_status      text NOT NULL,
    project_title       text NOT NULL
);
CREATE INDEX scan_results_by_component ON scan_results (component_id, synced_at DESC, id DESC);

CREATE TABLE issues (
    component_id    uuid NOT NULL REFERENCES components (id) ON DELETE CASCADE,
    category        text NOT NULL,
    fossa_id        text COLLATE "C" NOT NULL,
    -- The domain's orders (critical first; licensing, vulnerability, quality) as numbers.
    category_rank   smallint NOT NULL,
    severity_rank   smallint NOT NULL,
    issue_type      text NOT NULL,
    severity        text NOT NULL,
    title           text NOT NULL,
    package_name    text NOT NULL,
    package_version text,
    package_locator text,
    package_manager text,
    license         text,
    cve             text,
    cvss            double precision,
    direct          boolean NOT NULL,
    detected_at     timestamptz,
    url             text,
    status          text NOT NULL,
    first_seen_at   timestamptz NOT NULL,
    resolved_at     timestamptz,
    -- The scan that last saw a RESOLVED issue. ACTIVE issues were seen by the component's
    -- latest scan, so unchanged issues are not rewritten on every sync.
    scan_result_id  uuid NOT NULL,
    PRIMARY KEY (component_id, category, fossa_id)
);

CREATE TABLE dependencies (
    component_id       uuid NOT NULL REFERENCES components (id) ON DELETE CASCADE,
    locator            text COLLATE "C" NOT NULL,
    name               text COLLATE "C" NOT NULL,
    version            text,
    package_manager    text NOT NULL,
    is_direct          boolean NOT NULL,
    depth              integer NOT NULL,
    licenses           jsonb NOT NULL,
    license_expression text
);
-- One index only: writing 20 000 dependencies is most of a large sync. Locators are unique per
-- component because the store writes them de-duplicated.
CREATE INDEX dependencies_by_name ON dependencies (component_id, name, locator);

-- Bodies of notifier events too large for NOTIFY's payload limit; the NOTIFY carries the id.
CREATE TABLE notifications (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    body       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_by_created ON notifications (created_at);
