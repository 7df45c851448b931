"""The webhook receiver of the workflow document's pseudocode, as a FastAPI app.

Run: uvicorn app:app --host 127.0.0.1 --port 3200   (and `python worker.py` beside it)

The handler follows the document step by step: log the event, verify, update, parse,
update, find the component, update, create the job, enqueue it on Redis, update, answer.
A small component registration route and a `/ws` endpoint (the same subscribe protocol as
the reference server) are added so that the same load generator can drive both.
"""

import asyncio
import json
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Optional

import redis.asyncio as aioredis
from fastapi import FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

import common


class Repository(BaseModel):
    name: Optional[str] = None
    url: str
    provider: Optional[str] = None


class Scan(BaseModel):
    revision: str
    branch: str
    status: str
    issues_found: Optional[bool] = None


class Pipeline(BaseModel):
    id: Optional[str] = None
    url: Optional[str] = None
    provider: Optional[str] = None


class Metadata(BaseModel):
    triggered_by: Optional[str] = None
    actor: Optional[str] = None


class WebhookPayload(BaseModel):
    event: str
    # The document's own curl test sends no timestamp; accept it like the reference server.
    timestamp: Optional[datetime] = None
    repository: Repository
    scan: Scan
    pipeline: Optional[Pipeline] = None
    metadata: Optional[Metadata] = None


class NewComponent(BaseModel):
    name: str
    repository_url: str
    fossa_locator: str
    default_branch: str = "main"


class ConnectionManager:
    """WebSocket clients by channel; broadcast sends to each in turn."""

    def __init__(self):
        self.channels: dict[str, set[WebSocket]] = {}
        self.seq: dict[str, int] = {}

    def subscribe(self, channel: str, ws: WebSocket):
        self.channels.setdefault(channel, set()).add(ws)

    def remove(self, ws: WebSocket):
        for clients in self.channels.values():
            clients.discard(ws)

    async def broadcast(self, channel: str, event: str, data: dict, timestamp: str):
        self.seq[channel] = self.seq.get(channel, 0) + 1
        message = json.dumps(
            {
                "type": "event",
                "channel": channel,
                "event": event,
                "data": data,
                "timestamp": timestamp,
                "seq": self.seq[channel],
            }
        )
        for ws in list(self.channels.get(channel, ())):
            try:
                await ws.send_text(message)
            except Exception:
                self.remove(ws)


class Backend:
    db = None
    redis = None
    manager = ConnectionManager()


backend = Backend()


async def relay_events():
    """The worker publishes sync events on Redis; push them to this process's sockets."""
    pubsub = backend.redis.pubsub()
    await pubsub.subscribe(common.EVENTS_CHANNEL)
    async for message in pubsub.listen():
        if message.get("type") != "message":
            continue
        event = json.loads(message["data"])
        await backend.manager.broadcast(
            event["channel"], event["event"], event["data"], event["timestamp"]
        )


@asynccontextmanager
async def lifespan(_app: FastAPI):
    backend.db = await common.open_db()
    # No read timeout: the event relay waits on pub/sub for as long as nothing happens
    # (redis-py's default timeout would end it after a few quiet seconds).
    backend.redis = aioredis.from_url(common.REDIS_URL, decode_responses=True, socket_timeout=None)
    relay = asyncio.create_task(relay_events())
    yield
    relay.cancel()
    await backend.redis.aclose()
    await backend.db.close()


app = FastAPI(lifespan=lifespan)


async def create_event(values: dict) -> str:
    event_id = common.new_id()
    columns = ", ".join(["id", *values])
    marks = ", ".join("?" for _ in range(len(values) + 1))
    await backend.db.execute(
        f"INSERT INTO webhook_events ({columns}) VALUES ({marks})", (event_id, *values.values())
    )
    await backend.db.commit()
    return event_id


async def update_event(event_id: str, values: dict):
    sets = ", ".join(f"{k} = ?" for k in values)
    await backend.db.execute(
        f"UPDATE webhook_events SET {sets} WHERE id = ?", (*values.values(), event_id)
    )
    await backend.db.commit()


@app.post("/api/webhooks/fossa-scan", status_code=202)
async def handle_fossa_webhook(request: Request):
    # 1. Extract headers
    signature = request.headers.get("X-Webhook-Signature")
    timestamp = request.headers.get("X-Webhook-Timestamp")
    raw_body = await request.body()

    # 2. Log the event (always, for debugging)
    event_id = await create_event(
        {
            "event_type": "fossa.scan.completed",
            "source_ip": request.client.host if request.client else None,
            "raw_payload": raw_body.decode("utf-8", errors="replace"),
            "signature": signature,
            "received_at": common.utcnow(),
        }
    )

    # 3. Verify signature
    if not common.verify_signature(raw_body, signature, timestamp, common.WEBHOOK_SECRET):
        await update_event(
            event_id,
            {
                "signature_valid": False,
                "processing_status": "FAILED",
                "error_message": "Invalid signature",
            },
        )
        raise HTTPException(401, "Invalid webhook signature")

    await update_event(event_id, {"signature_valid": True})

    # 4. Parse and validate payload
    try:
        payload = WebhookPayload.model_validate_json(raw_body)
    except ValidationError as e:
        await update_event(event_id, {"processing_status": "FAILED", "error_message": str(e)})
        raise HTTPException(400, {"error": "Invalid payload", "details": json.loads(e.json())})

    # 5. Find matching component
    cursor = await backend.db.execute(
        "SELECT id, name FROM components WHERE repository_url = ?", (payload.repository.url,)
    )
    component = await cursor.fetchone()
    if not component:
        await update_event(
            event_id,
            {
                "processing_status": "FAILED",
                "error_message": f"No component linked to {payload.repository.url}",
            },
        )
        raise HTTPException(404, "No component linked to this repository")

    await update_event(event_id, {"component_id": component["id"]})

    # 6. Create sync job
    sync_job_id = common.new_id()
    await backend.db.execute(
        "INSERT INTO sync_jobs (id, component_id, trigger_type, webhook_event_id, status, "
        "revision, branch, queued_at) VALUES (?, ?, 'WEBHOOK', ?, 'QUEUED', ?, ?, ?)",
        (
            sync_job_id,
            component["id"],
            event_id,
            payload.scan.revision,
            payload.scan.branch,
            common.utcnow(),
        ),
    )
    await backend.db.commit()

    # 7. Enqueue the job
    await backend.redis.lpush(
        common.QUEUE_KEY,
        json.dumps(
            {
                "sync_job_id": sync_job_id,
                "component_id": component["id"],
                "revision": payload.scan.revision,
            }
        ),
    )

    # 8. Update webhook event
    await update_event(event_id, {"processing_status": "QUEUED", "sync_job_id": sync_job_id})

    # 9. Return response
    return {
        "sync_id": sync_job_id,
        "status": "queued",
        "component": {"id": component["id"], "name": component["name"]},
    }


def authorized(header: Optional[str]) -> bool:
    return header == f"Bearer {common.ADMIN_TOKEN}"


@app.post("/api/components", status_code=201)
async def register_component(new: NewComponent, request: Request):
    if not authorized(request.headers.get("Authorization")):
        raise HTTPException(401, "Missing or invalid API token")
    component_id = common.new_id()
    try:
        await backend.db.execute(
            "INSERT INTO components (id, name, repository_url, fossa_locator, default_branch) "
            "VALUES (?, ?, ?, ?, ?)",
            (component_id, new.name, new.repository_url, new.fossa_locator, new.default_branch),
        )
        await backend.db.commit()
    except Exception:
        await backend.db.rollback()
        return JSONResponse({"error": "Component exists"}, status_code=409)
    return {"id": component_id, "name": new.name}


@app.websocket("/ws")
async def websocket(ws: WebSocket):
    if not authorized(ws.headers.get("authorization")):
        await ws.close(code=1008)
        return
    await ws.accept()
    try:
        while True:
            message = json.loads(await ws.receive_text())
            if message.get("type") == "subscribe":
                channel = message.get("channel", "")
                backend.manager.subscribe(channel, ws)
                await ws.send_text(
                    json.dumps({"type": "subscribed", "channel": channel, "seq": 0})
                )
    except (WebSocketDisconnect, ValueError):
        backend.manager.remove(ws)
