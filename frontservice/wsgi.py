"""WSGI entry point (gunicorn frontservice.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

from frontservice.request_body import strict_body

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "frontservice.settings")
# A body shorter than its Content-Length raises instead of ending early (request_body.py).
application = strict_body(get_wsgi_application())
