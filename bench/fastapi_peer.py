"""FastAPI + one shared ``httpx.AsyncClient`` under uvicorn: what the seed articles
recommend instead of a Flask proxy. Kept as small and fair as the Flask baseline."""

from __future__ import annotations

import os
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request, Response

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:9101")
SKIP = frozenset({"connection", "transfer-encoding", "content-encoding", "content-length",
                  "keep-alive", "date", "server", "host"})
client: httpx.AsyncClient


@asynccontextmanager
async def lifespan(_app: FastAPI):
    global client
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(limits=limits) as shared:
        client = shared
        yield


app = FastAPI(lifespan=lifespan)


@app.api_route("/users/{rest:path}", methods=["GET", "POST"])
async def forward(rest: str, request: Request) -> Response:
    upstream = await client.request(
        request.method, f"{UPSTREAM}/users/{rest}", content=await request.body(),
        headers=[(k, v) for k, v in request.headers.items() if k.lower() not in SKIP])
    return Response(upstream.content, status_code=upstream.status_code,
                    headers={k: v for k, v in upstream.headers.items() if k.lower() not in SKIP})
