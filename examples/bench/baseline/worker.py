"""The sync worker of the workflow document's pseudocode, on a plain Redis list.

Run: python worker.py

One job at a time, as a single rq-style worker process does: take a job, mark it running,
fetch project, issues and dependencies from FOSSA, store them step by step, mark the job
completed, and publish `sync.completed` for the API process to push to its WebSockets.
"""

import asyncio
import json
import logging
from urllib.parse import quote

import httpx
import redis.asyncio as aioredis

import common

log = logging.getLogger("worker")


class FossaClient:
    def __init__(self, base_url: str, api_key: str):
        self.http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=30.0,
        )

    async def get_project(self, locator: str) -> dict:
        response = await self.http.get(f"/api/v2/projects/{quote(locator, safe='')}")
        response.raise_for_status()
        return response.json()

    async def get_issues(self, locator: str) -> list:
        issues = []
        for category in ("licensing", "vulnerability", "quality"):
            page = 1
            while True:
                response = await self.http.get(
                    "/api/v2/issues",
                    params={
                        "category": category,
                        "scope[type]": "project",
                        "scope[id]": locator,
                        "status": "active",
                        "count": 1000,
                        "page": page,
                    },
                )
                response.raise_for_status()
                batch = response.json().get("issues", [])
                issues.extend(batch)
                if len(batch) < 1000:
                    break
                page += 1
        return issues

    async def get_dependencies(self, locator: str, revision: str) -> list:
        revision_locator = quote(f"{locator}${revision}", safe="")
        response = await self.http.get(f"/api/revisions/{revision_locator}/dependencies")
        response.raise_for_status()
        return response.json()


async def update_job(db, sync_job_id: str, values: dict):
    sets = ", ".join(f"{k} = ?" for k in values)
    await db.execute(f"UPDATE sync_jobs SET {sets} WHERE id = ?", (*values.values(), sync_job_id))
    await db.commit()


async def sync_fossa_results(db, redis, fossa, sync_job_id, component_id, revision):
    # 1. Update job status
    await update_job(db, sync_job_id, {"status": "RUNNING", "started_at": common.utcnow()})

    try:
        # 2. Get component with FOSSA locator
        cursor = await db.execute("SELECT * FROM components WHERE id = ?", (component_id,))
        component = await cursor.fetchone()
        locator = component["fossa_locator"]

        # 3. Fetch data from FOSSA API
        project = await fossa.get_project(locator)
        issues = await fossa.get_issues(locator)
        dependencies = await fossa.get_dependencies(locator, revision)
        direct = [d for d in dependencies if d.get("depth") == 1]

        # 4. Store scan result
        await db.execute(
            "INSERT INTO cached_scan_results (id, component_id, revision_sha, branch, scanned_at, "
            "synced_at, total_dependencies, direct_dependencies, overall_status, "
            "raw_fossa_response) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (component_id, revision_sha) DO UPDATE SET synced_at = excluded.synced_at, "
            "total_dependencies = excluded.total_dependencies, "
            "direct_dependencies = excluded.direct_dependencies, "
            "overall_status = excluded.overall_status, "
            "raw_fossa_response = excluded.raw_fossa_response",
            (
                common.new_id(),
                component_id,
                revision,
                component["default_branch"],
                project.get("lastAnalyzed"),
                common.utcnow(),
                len(dependencies),
                len(direct),
                "PASSED" if len(issues) == 0 else "FAILED",
                json.dumps(project),
            ),
        )
        await db.commit()
        cursor = await db.execute(
            "SELECT id FROM cached_scan_results WHERE component_id = ? AND revision_sha = ?",
            (component_id, revision),
        )
        scan_result_id = (await cursor.fetchone())["id"]

        # 5. Sync issues (mark old ones as resolved)
        existing_issue_ids = []
        for issue in issues:
            source = issue.get("source") or {}
            await db.execute(
                "INSERT INTO cached_issues (id, component_id, scan_result_id, fossa_issue_id, "
                "issue_type, severity, title, package_name, package_version, status, "
                "detected_at, synced_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'ACTIVE', ?, ?) "
                "ON CONFLICT (component_id, fossa_issue_id) DO UPDATE SET "
                "scan_result_id = excluded.scan_result_id, status = 'ACTIVE', "
                "synced_at = excluded.synced_at",
                (
                    common.new_id(),
                    component_id,
                    scan_result_id,
                    str(issue["id"]),
                    issue.get("type"),
                    issue.get("severity"),
                    issue.get("title") or issue.get("type"),
                    source.get("name"),
                    source.get("version"),
                    issue.get("createdAt"),
                    common.utcnow(),
                ),
            )
            await db.commit()
            existing_issue_ids.append(str(issue["id"]))

        # Mark issues not in this scan as resolved
        marks = ", ".join("?" for _ in existing_issue_ids) or "''"
        await db.execute(
            f"UPDATE cached_issues SET status = 'RESOLVED' WHERE component_id = ? "
            f"AND status = 'ACTIVE' AND fossa_issue_id NOT IN ({marks})",
            (component_id, *existing_issue_ids),
        )
        await db.commit()

        # 6. Sync dependencies
        await db.execute(
            "DELETE FROM cached_dependencies WHERE scan_result_id = ?", (scan_result_id,)
        )
        await db.executemany(
            "INSERT INTO cached_dependencies (scan_result_id, package_locator, package_name, "
            "package_version, package_manager, is_direct, license_expression, synced_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    scan_result_id,
                    dep.get("locator"),
                    (dep.get("loc") or {}).get("package"),
                    (dep.get("loc") or {}).get("revision"),
                    (dep.get("loc") or {}).get("fetcher"),
                    dep.get("depth") == 1,
                    " AND ".join(l.get("licenseId", "") for l in dep.get("licenses") or []),
                    common.utcnow(),
                )
                for dep in dependencies
            ],
        )
        await db.commit()

        # 7. Update job as completed
        await update_job(
            db,
            sync_job_id,
            {
                "status": "COMPLETED",
                "completed_at": common.utcnow(),
                "issues_synced": len(issues),
                "dependencies_synced": len(dependencies),
            },
        )

        # 8. Update component last_synced
        status = "PASSING" if len(issues) == 0 else "FAILING"
        await db.execute(
            "UPDATE components SET last_synced_at = ?, compliance_status = ? WHERE id = ?",
            (common.utcnow(), status, component_id),
        )
        await db.commit()

        # 9. Publish real-time notification
        data = {
            "component_id": component_id,
            "sync_job_id": sync_job_id,
            "revision": revision,
            "issues_count": len(issues),
            "status": status,
        }
        for channel in (f"component:{component_id}", "components"):
            await redis.publish(
                common.EVENTS_CHANNEL,
                json.dumps(
                    {
                        "channel": channel,
                        "event": "sync.completed",
                        "data": data,
                        "timestamp": common.utcnow(),
                    }
                ),
            )
    except Exception as e:
        await update_job(
            db,
            sync_job_id,
            {"status": "FAILED", "completed_at": common.utcnow(), "error_message": str(e)},
        )
        raise


async def main():
    logging.basicConfig(level=logging.INFO)
    db = await common.open_db()
    # No read timeout: BRPOP blocks until a job comes (redis-py's default timeout is no
    # longer than the BRPOP wait and would end the worker when the queue is quiet).
    redis = aioredis.from_url(common.REDIS_URL, decode_responses=True, socket_timeout=None)
    fossa = FossaClient(common.FOSSA_BASE_URL, common.FOSSA_API_KEY)
    log.info("worker waiting for jobs on %s", common.QUEUE_KEY)
    while True:
        item = await redis.brpop(common.QUEUE_KEY, timeout=5)
        if item is None:
            continue
        job = json.loads(item[1])
        try:
            await sync_fossa_results(db, redis, fossa, **job)
        except Exception:
            log.exception("sync %s failed", job.get("sync_job_id"))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
