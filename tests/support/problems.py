"""What every error answer of the API is: an RFC 9457 problem document that gives nothing away.

For any response a test holds: Django's (in-process), requests' (the stack) or a raw one.
"""

import json
from urllib.parse import urlsplit

from django.conf import settings


def leaks(*urls: str) -> list[str]:
    """What no response may contain: tracebacks, source paths, internal addresses (the database
    and the given downstream `urls`)."""
    mongo = urlsplit(settings.MONGODB_URI)
    return [
        "Traceback",
        'File "',
        "/work/",
        str(settings.BASE_DIR),
        *(urlsplit(url).netloc for url in urls),
        settings.MONGODB_URI,
        mongo.netloc,
    ]


def text_of(response) -> str:
    text = getattr(response, "text", None)
    return text if text is not None else response.content.decode()


def assert_problem(response, status_code: int, code: str | None = None, *, secrets=()) -> dict:
    """A problem document with this status (and code), free of anything internal."""
    text = text_of(response)
    assert response.status_code == status_code, text
    assert response.headers["Content-Type"] == "application/problem+json", text
    for secret in secrets:
        assert secret not in text, (secret, text)
    body = json.loads(text)
    assert set(body) == {"type", "title", "status", "detail", "code"}, body
    assert body["status"] == status_code
    assert body["type"] == f"urn:frontservice:problem:{body['code']}"
    assert body["title"] and body["detail"]
    if code is not None:
        assert body["code"] == code, body
    return body
