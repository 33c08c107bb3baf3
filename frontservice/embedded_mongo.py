"""The embedded MongoDB for development and tests: mongoeco's wire server in its own process.

    python -m frontservice.embedded_mongo --port 27018 --path var/mongo/frontservice.sqlite3
    python -m frontservice.embedded_mongo --port 0 --memory      # tests: in memory

It speaks the MongoDB wire protocol, so Django, django-q2 and pymongo connect to it exactly as
they would to a real server (MONGODB_URI). Production uses a real MongoDB replica set instead.
This module must not import Django: it is a database server, not part of the app.
"""

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from mongoeco.engines.memory import MemoryEngine
from mongoeco.engines.sqlite import SQLiteEngine
from mongoeco.wire.executor import WireCommandExecutor
from mongoeco.wire.proxy import AsyncMongoEcoProxyServer

_build_request_context = WireCommandExecutor._build_request_context


def _accept_lowercase_buildinfo(self, body, **kwargs):
    # mongoeco 4.11 only knows "buildInfo", but pymongo's MongoClient.server_info() sends
    # "buildinfo" (the server treats command names case-insensitively here), and
    # django-mongodb-backend calls server_info() on connect. Rename it before dispatch.
    if "buildinfo" in body:
        body = {("buildInfo" if key == "buildinfo" else key): value for key, value in body.items()}
    return _build_request_context(self, body, **kwargs)


WireCommandExecutor._build_request_context = _accept_lowercase_buildinfo


async def serve(*, host: str, port: int, path: Path | None) -> None:
    if path is None:
        engine = MemoryEngine()
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = SQLiteEngine(str(path))
    server = AsyncMongoEcoProxyServer(engine=engine, host=host, port=port)
    address = await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # One line that launchers and tests wait for; it carries the real port when --port 0.
    print(
        f"listening on mongodb://{address.host}:{address.port}/?directConnection=true", flush=True
    )
    try:
        await stop.wait()
    finally:
        # Closing the engine flushes and closes the SQLite file cleanly.
        await server.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=27018)
    storage = parser.add_mutually_exclusive_group(required=True)
    storage.add_argument("--path", type=Path, help="SQLite file that keeps the data")
    storage.add_argument("--memory", action="store_true", help="keep the data in memory only")
    args = parser.parse_args(argv)
    asyncio.run(serve(host=args.host, port=args.port, path=None if args.memory else args.path))
    sys.exit(0)


if __name__ == "__main__":
    main()
