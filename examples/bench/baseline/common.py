"""Shared by the API and the worker: settings, the database schema, and the signature check.

Written the way the workflow document's pseudocode reads: one aiosqlite connection, one
statement and one commit per step, SQLite's default journal and sync settings.
"""

import hashlib
import hmac
import os
import time
import uuid
from datetime import datetime, timezone

import aiosqlite

WEBHOOK_SECRET = os.environ.get("WEBHOOK_SECRET", "your-webhook-secret")
ADMIN_TOKEN = os.environ.get("ADMIN_TOKEN", "admin-token")
DATABASE_PATH = os.environ.get("DATABASE_PATH", "baseline.db")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
QUEUE_KEY = os.environ.get("QUEUE_KEY", "baseline:sync_fossa_results")
EVENTS_CHANNEL = os.environ.get("EVENTS_CHANNEL", "baseline:events")
FOSSA_BASE_URL = os.environ.get("FOSSA_BASE_URL", "https://app.fossa.com")
FOSSA_API_KEY = os.environ.get("FOSSA_API_KEY", "")

SCHEMA = """
CREATE TABLE IF NOT EXISTS components (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    repository_url TEXT NOT NULL UNIQUE,
    fossa_locator TEXT NOT NULL,
    default_branch TEXT NOT NULL,
    compliance_status TEXT,
    last_synced_at TEXT
);
CREATE TABLE IF NOT EXISTS webhook_events (
    id TEXT PRIMARY KEY,
    event_type TEXT,
    source_ip TEXT,
    raw_payload TEXT,
    signature TEXT,
    signature_valid INTEGER,
    processing_status TEXT,
    component_id TEXT,
    sync_job_id TEXT,
    received_at TEXT,
    processed_at TEXT,
    error_message TEXT
);
CREATE TABLE IF NOT EXISTS sync_jobs (
    id TEXT PRIMARY KEY,
    component_id TEXT NOT NULL,
    trigger_type TEXT NOT NULL,
    webhook_event_id TEXT,
    status TEXT NOT NULL,
    revision TEXT,
    branch TEXT,
    queued_at TEXT,
    started_at TEXT,
    completed_at TEXT,
    issues_synced INTEGER,
    dependencies_synced INTEGER,
    error_message TEXT
);
CREATE TABLE IF NOT EXISTS cached_scan_results (
    id TEXT PRIMARY KEY,
    component_id TEXT NOT NULL,
    revision_sha TEXT,
    branch TEXT,
    scanned_at TEXT,
    synced_at TEXT,
    total_dependencies INTEGER,
    direct_dependencies INTEGER,
    overall_status TEXT,
    raw_fossa_response TEXT,
    UNIQUE (component_id, revision_sha)
);
CREATE TABLE IF NOT EXISTS cached_issues (
    id TEXT PRIMARY KEY,
    component_id TEXT NOT NULL,
    scan_result_id TEXT,
    fossa_issue_id TEXT NOT NULL,
    issue_type TEXT,
    severity TEXT,
    title TEXT,
    package_name TEXT,
    package_version TEXT,
    status TEXT,
    detected_at TEXT,
    synced_at TEXT,
    UNIQUE (component_id, fossa_issue_id)
);
CREATE TABLE IF NOT EXISTS cached_dependencies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scan_result_id TEXT NOT NULL,
    package_locator TEXT,
    package_name TEXT,
    package_version TEXT,
    package_manager TEXT,
    is_direct INTEGER,
    license_expression TEXT,
    synced_at TEXT
);
"""


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat()


def new_id() -> str:
    return str(uuid.uuid4())


async def open_db() -> aiosqlite.Connection:
    db = await aiosqlite.connect(DATABASE_PATH)
    db.row_factory = aiosqlite.Row
    await db.executescript(SCHEMA)
    await db.commit()
    return db


# The document's signature algorithm, as written there.
def compute_signature(payload: bytes, secret: str, timestamp: str) -> str:
    message = f"{timestamp}.{payload.decode('utf-8')}"
    signature = hmac.new(
        secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256
    ).hexdigest()
    return f"sha256={signature}"


def verify_signature(
    payload: bytes, signature: str, timestamp: str, secret: str, max_age_seconds: int = 300
) -> bool:
    if not signature or not timestamp:
        return False
    try:
        webhook_time = int(timestamp)
        payload.decode("utf-8")
    except ValueError:
        return False
    if abs(int(time.time()) - webhook_time) > max_age_seconds:
        return False
    expected = compute_signature(payload, secret, timestamp)
    return hmac.compare_digest(expected, signature)
