"""The embedded MongoDB keeps MongoDB's answers where frontservice/embedded_mongo.py takes
mongoeco's shortcuts: duplicate ids are refused, a compare-and-set matches only its whole filter,
and filtered queries find what they should. On both engines: SQLite (`make run`) and memory
(the tests' database)."""

import uuid

import pytest
from bson.decimal128 import Decimal128
from pymongo import MongoClient, ReturnDocument
from pymongo.errors import DuplicateKeyError

from tests.support.processes import ManagedProcess, free_port, wait_for_port
from tests.support.stack import mongo_argv


@pytest.fixture(scope="module", params=["sqlite", "memory"])
def database(request, tmp_path_factory):
    """One embedded MongoDB per engine for this module's tests."""
    port = free_port()
    data_dir = tmp_path_factory.mktemp(f"mongo-{request.param}")
    argv = mongo_argv(port, data_dir / "mongo.sqlite3")
    if request.param == "memory":
        argv = [*argv[:-2], "--memory"]
    process = ManagedProcess.start(argv, name=f"mongo-{request.param}", log_dir=data_dir)
    try:
        wait_for_port(process, port)
        # Standard UUIDs, as django-mongodb-backend stores them.
        client = MongoClient(
            f"mongodb://127.0.0.1:{port}/?directConnection=true", uuidRepresentation="standard"
        )
        yield client["embedded_test"]
        client.close()
    finally:
        process.stop()


@pytest.fixture
def collection(database):
    """A collection of the test's own: it sees only the documents it inserts."""
    return database[f"things_{uuid.uuid4().hex}"]


@pytest.mark.parametrize("make_id", [uuid.uuid4, lambda: uuid.uuid4().hex], ids=["uuid", "string"])
def test_a_duplicate_id_is_refused(collection, make_id):
    same = make_id()
    collection.insert_one({"_id": same, "n": 1})

    with pytest.raises(DuplicateKeyError):
        collection.insert_one({"_id": same, "n": 2})

    assert collection.find_one({"_id": same})["n"] == 1


def test_numeric_ids_are_still_compared_by_value(collection):
    # What mongoeco's whole-collection scan exists for, kept: 1 and 1.0 are the same id.
    collection.insert_one({"_id": 1})

    with pytest.raises(DuplicateKeyError):
        collection.insert_one({"_id": 1.0})


def test_a_compare_and_set_matches_only_its_whole_filter(collection):
    ids = [uuid.uuid4() for _ in range(20)]
    collection.insert_many([{"_id": i, "status": "CREATED", "n": 0} for i in ids])
    target = ids[7]

    missed = collection.find_one_and_update(
        {"_id": target, "status": "STORED"}, {"$set": {"status": "SUBMITTED"}}
    )
    won = collection.find_one_and_update(
        {"_id": target, "status": "CREATED"},
        {"$set": {"status": "STORED"}, "$inc": {"n": 1}},
        return_document=ReturnDocument.AFTER,
    )
    lost = collection.find_one_and_update(
        {"_id": target, "status": "CREATED"}, {"$set": {"status": "STORED_ERROR"}}
    )

    assert missed is None and lost is None
    assert (won["status"], won["n"]) == ("STORED", 1)
    assert collection.count_documents({"status": "STORED"}) == 1
    assert collection.count_documents({"status": "CREATED"}) == 19
    updated = collection.update_many(
        {"_id": {"$in": ids[:3]}, "status": "CREATED"}, {"$set": {"status": "STORED"}}
    )
    assert updated.modified_count == 3


def test_filters_on_fields_find_what_they_should(collection):
    # No stored document holds a Decimal128 (none of ours does: the shortcut's premise).
    collection.insert_many(
        [{"_id": uuid.uuid4(), "size": n, "kind": "ab"[n % 2]} for n in range(10)]
    )

    assert collection.count_documents({"size": {"$gte": 5}}) == 5
    assert collection.count_documents({"kind": "a", "size": {"$lt": 5}}) == 3
    # A Decimal128 in the filter itself still takes mongoeco's exact path.
    assert collection.count_documents({"size": {"$gt": Decimal128("4.5")}}) == 5
