"""Content negotiation with a shortcut for what nearly every client sends.

The API renders JSON only (problem documents too). DRF's DefaultContentNegotiation parses the
Accept header and ranks its media types on every request; for no Accept header, `*/*` or
`application/json` its answer is always the JSON renderer with `application/json`, so that
answer is given straight away. Anything else (another type, several, parameters, `?format=`) is
negotiated by DRF as before, a 406 included.
"""

from rest_framework.negotiation import DefaultContentNegotiation

_JSON_ACCEPTS = frozenset({"", "*/*", "application/json"})


class JSONFirstNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        if (
            format_suffix is None
            and len(renderers) == 1
            and renderers[0].media_type == "application/json"
            and request.META.get("HTTP_ACCEPT", "").strip() in _JSON_ACCEPTS
            and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
        ):
            return renderers[0], "application/json"
        return super().select_renderer(request, renderers, format_suffix)
