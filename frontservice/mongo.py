"""Direct MongoDB access: the few operations the ORM cannot express, in one place.

- compare-and-set with a history entry in one update (`compare_and_set`): `$push` and the
  document as it was before, in a single atomic find_one_and_update;
- appending to an array without reading it first (`push`): a webhook attempt;
- a query that names its index (`find`): the listing walks the owner index in order;
- `distinct` on an index;
- counters in a collection the ORM has no model for (`counter_increment`: the rate limits);
- the reads of the API's hottest requests (`find_one`, `find`, `count`): compiling an ORM
  query costs more Python time than the rest of such a request (a status of a final job is one
  read by primary key); these send the query they would compile, and `load` makes the model
  instance the ORM would make of a document, with the ORM's own converters;
- the insert of a POST's job (`insert`): `save(force_insert=True)` compiles a query around the
  insert and sends it through PyMongo's bulk write, which took a third of the POST's Python
  time; `insert` sends the document the ORM would, made with the fields' own conversions.

Everything else goes through the ORM. Field names and values are translated the way the ORM
does it (`column`, `to_db`), so these documents are the ORM's documents.
"""

import functools

from django.db import IntegrityError, connection
from django.db.models import JSONField, Model
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


def find_one(model: type[Model], query: dict) -> Model | None:
    """The document matching `query` (columns and stored values) as a model instance, or None."""
    # An aggregate, as the ORM sends its reads: django-mongodb-backend's query log (DEBUG,
    # CaptureQueriesContext) records aggregate calls and not find_one.
    found = list(collection(model).aggregate([{"$match": query}, {"$limit": 1}]))
    return load(model, found[0]) if found else None


def find(model: type[Model], query: dict, *, sort: list, hint: str, limit: int) -> list[Model]:
    """The documents matching `query` as model instances, in `sort` order, read along the
    index `hint`, at most `limit`."""
    found = collection(model).find(query).sort(sort).hint(hint).limit(limit)
    return [load(model, document) for document in found]


def count(model: type[Model], query: dict, *, limit: int) -> int:
    """How many documents match `query`, counting no further than `limit`."""
    return collection(model).count_documents(query, limit=limit)


def load(model: type[Model], document: dict) -> Model:
    """The model instance the ORM makes of `document`: each field's column, through the
    converters the ORM's compiler applies (a missing column reads as None, as there)."""
    attnames, loaders = _loaders(model)
    values = []
    for column_name, expression, converters in loaders:
        value = document.get(column_name)
        for converter in converters:
            value = converter(value, expression, connection)
        values.append(value)
    return model.from_db(connection.alias, attnames, values)


@functools.cache
def _loaders(model: type[Model]) -> tuple[list[str], list[tuple]]:
    # What the compiler works out for every query (SQLCompiler.get_converters), once per model.
    # The converters read settings only (USE_TZ, the time zone), never the connection's state,
    # so the first thread's are every thread's.
    fields = model._meta.concrete_fields
    loaders = []
    for field in fields:
        expression = field.get_col(model._meta.db_table)
        if isinstance(field, JSONField) and field.decoder is None:
            # The ORM turns a JSON field's value into a string and parses it again
            # (convert_jsonfield_value, then from_db_value with json's own decoder), which
            # gives back an equal value of the same JSON types; BSON already decoded it.
            converters = []
        else:
            converters = connection.ops.get_db_converters(
                expression
            ) + expression.get_db_converters(connection)
        loaders.append((field.column, expression, converters))
    return [field.attname for field in fields], loaders


def insert(instance: Model) -> None:
    """Insert `instance` as a new document, as `save(force_insert=True)` does: each field's
    `pre_save` value (auto_now_add, auto_now) through its `get_db_prep_save`, under its column;
    an auto primary key left unset is the database's (the instance gets it). IntegrityError for
    a duplicate key, as from the ORM. No model signals are sent (no model here has receivers)."""
    model = type(instance)
    auto_pk = model._meta.auto_field if instance.pk is None else None
    document = {}
    for field, column_name, nullable in _savers(model):
        if field is auto_pk:
            continue
        value = field.get_db_prep_save(field.pre_save(instance, True), connection)
        if value is None and not nullable:
            # The ORM's own check (django-mongodb-backend's SQLInsertCompiler).
            raise IntegrityError(f"You can't set {field.name} (a non-nullable field) to None.")
        document[column_name] = value
    try:
        inserted = collection(model).insert_one(document)
    except DuplicateKeyError as exc:
        raise IntegrityError(str(exc)) from exc
    if auto_pk is not None:
        setattr(instance, auto_pk.attname, inserted.inserted_id)
    instance._state.adding = False
    instance._state.db = connection.alias


@functools.cache
def _savers(model: type[Model]) -> tuple[tuple, ...]:
    # The fields an insert writes (Model._save_table: the concrete fields of the model's own
    # table; none is generated or database-defaulted here), once per model.
    return tuple(
        (field, field.column, field.null or field.primary_key)
        for field in model._meta.local_concrete_fields
    )


def distinct(model: type[Model], name: str) -> list:
    """The distinct values of a field; walks an index that starts with it, where there is one."""
    return collection(model).distinct(column(model, name))


def counter_increment(name: str, key: str, *, amount: int = 1, expires_at) -> int:
    """Add `amount` to the counter `key` of the collection `name` (made with `expires_at` for its
    TTL index when it is the first), in one atomic update; the count after it."""
    counters = connection.get_collection(name)
    update = {"$inc": {"count": amount}, "$setOnInsert": {"expires_at": expires_at}}
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
