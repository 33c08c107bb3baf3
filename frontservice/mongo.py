"""Direct MongoDB access: the few operations the ORM cannot express, in one place.

- compare-and-set with a history entry in one update (`compare_and_set`): `$push` and the
  document as it was before, in a single atomic find_one_and_update;
- appending to an array without reading it first (`push`): a webhook attempt;
- a query that names its index (`find_ids`): the listing walks the owner index in order;
- `distinct` on an index;
- counters in a collection the ORM has no model for (`counter_increment`: the rate limits).

Everything else goes through the ORM. Field names and values are translated the way the ORM
does it (`column`, `to_db`), so these documents are the ORM's documents.
"""

from django.db import connection
from django.db.models import Model
from pymongo import ReturnDocument
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError


def collection(model: type[Model]) -> Collection:
    return connection.get_collection(model._meta.db_table)


def column(model: type[Model], name: str) -> str:
    return model._meta.get_field(name).column


def to_db(model: type[Model], name: str, value):
    """The value as the ORM stores it in the field `name` ("pk" for the primary key)."""
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    return field.get_db_prep_save(value, connection)


def _document_filter(model: type[Model], pk, match: dict) -> dict:
    return {
        model._meta.pk.column: to_db(model, "pk", pk),
        **{column(model, name): to_db(model, name, value) for name, value in match.items()},
    }


def compare_and_set(
    model: type[Model],
    pk,
    *,
    match: dict,
    changes: dict,
    push: dict | None = None,
    before: tuple[str, ...] = (),
) -> dict | None:
    """Set `changes` (and push `push`) on the document `pk` if it still holds `match`.

    One atomic single-document update: of two callers with the same `match`, one changes the
    document and the other gets None. The winner gets the document as it was before the
    change, with the fields named in `before` (and its primary key).
    """
    update = {"$set": {column(model, name): to_db(model, name, v) for name, v in changes.items()}}
    if push:
        update["$push"] = push
    return collection(model).find_one_and_update(
        _document_filter(model, pk, match),
        update,
        projection={model._meta.pk.column: 1, **{column(model, name): 1 for name in before}},
        return_document=ReturnDocument.BEFORE,
    )


def push(model: type[Model], pk, *, field: str, entry: dict, changes: dict) -> None:
    """Append `entry` to the array `field` of document `pk` and set `changes`, in one update
    (no read-modify-write, so concurrent appends never lose one another)."""
    collection(model).update_one(
        _document_filter(model, pk, {}),
        {
            "$push": {column(model, field): entry},
            "$set": {column(model, name): to_db(model, name, v) for name, v in changes.items()},
        },
    )


def find_ids(model: type[Model], query: dict, *, sort: list, hint: str, limit: int) -> list:
    """The primary keys of the documents matching `query`, in `sort` order, read along the
    index `hint` (so the server walks it instead of choosing a plan), at most `limit`."""
    pk = model._meta.pk
    found = (
        collection(model).find(query, projection={pk.column: 1}).sort(sort).hint(hint).limit(limit)
    )
    return [pk.to_python(document[pk.column]) for document in found]


def distinct(model: type[Model], name: str) -> list:
    """The distinct values of a field; walks an index that starts with it, where there is one."""
    return collection(model).distinct(column(model, name))


def counter_increment(name: str, key: str, *, expires_at) -> int:
    """Add one to the counter `key` of the collection `name` (made with `expires_at` for its TTL
    index when it is the first), in one atomic update; the count after it."""
    counters = connection.get_collection(name)
    update = {"$inc": {"count": 1}, "$setOnInsert": {"expires_at": expires_at}}
    try:
        counter = counters.find_one_and_update(
            {"_id": key}, update, upsert=True, return_document=ReturnDocument.AFTER
        )
    except DuplicateKeyError:
        # The counter's first two increments raced to insert it; the other's insert won.
        counter = counters.find_one_and_update(
            {"_id": key}, update, return_document=ReturnDocument.AFTER
        )
    return counter["count"]
