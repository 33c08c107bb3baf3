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

from mongoeco.core.filtering import QueryEngine
from mongoeco.core.identity import id_contains_numeric_value
from mongoeco.core.query_plan import AndCondition, EqualsCondition
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


def _scan_for_numeric_ids_only(validate):
    # mongoeco 4.11 checks every insert and every update for a duplicate `_id` twice: a lookup
    # by the id's storage key, and then (scan_payload_id=True) a scan that loads and decodes
    # every document of the collection, because a numeric id may equal another of a different
    # type (1 == 1.0) under a different storage key. That scan made each write cost O(documents):
    # 30-80 ms per insert or update at 3,000 documents, and a busy database slowed down as
    # its collections grew. Our ids are ObjectIds and UUIDs, never numbers, and for those the
    # storage-key lookup is exact, so the scan is skipped unless the id is numeric (which keeps
    # mongoeco's own behaviour for exactly the case it was written for).
    def validate_unique(self, db_name, coll_name, document, *, scan_payload_id=False, **kwargs):
        if scan_payload_id and not id_contains_numeric_value(document.get("_id")):
            scan_payload_id = False
        return validate(
            self, db_name, coll_name, document, scan_payload_id=scan_payload_id, **kwargs
        )

    return validate_unique


# The same check under each engine's own name.
MemoryEngine._ensure_unique_indexes = _scan_for_numeric_ids_only(
    MemoryEngine._ensure_unique_indexes
)
SQLiteEngine._validate_document_against_unique_indexes = _scan_for_numeric_ids_only(
    SQLiteEngine._validate_document_against_unique_indexes
)

_select_first_document_for_plan = SQLiteEngine._select_first_document_for_plan


def _select_first_by_id(self, db_name, coll_name, plan, *args, **kwargs):
    # mongoeco's SQLite engine finds a document to update by its storage key only when the
    # filter is exactly {"_id": value}; {"_id": value, "status": "CREATED"} (every
    # compare-and-set we make) fell back to a query that decodes the collection's documents
    # one by one: 50-150 ms per update at 3,000 documents. Look the id up by its key, then test
    # the whole filter on that one document, which is what the filter means.
    if isinstance(plan, AndCondition):
        for clause in plan.clauses:
            if isinstance(clause, EqualsCondition) and clause.field == "_id":
                found = _select_first_document_for_plan(
                    self, db_name, coll_name, clause, *args, **kwargs
                )
                if found is None or not QueryEngine.match_plan(found[1], plan):
                    return None
                return found
    return _select_first_document_for_plan(self, db_name, coll_name, plan, *args, **kwargs)


SQLiteEngine._select_first_document_for_plan = _select_first_by_id


def _decimal_operands_only(self, db_name, coll_name, plan):
    # Before compiling a filter to SQL, mongoeco's SQLite engine asks whether any stored
    # document holds a Decimal128 in a filtered field (SQL cannot compare those): one
    # json_extract scan of the whole collection per field, cached only until the next write, so
    # under a steady write load every filtered query scanned the collection (30 ms per query at
    # 3,000 documents). No FrontService or django-q2 document stores a Decimal128 (no model has
    # a DecimalField), so only a Decimal128 in the filter itself needs the Python path.
    return self._plan_contains_decimal_operand(plan)


SQLiteEngine._plan_requires_python_for_decimal_numeric = _decimal_operands_only


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
