#!/usr/bin/env python
"""Django's command-line utility for administrative tasks.

A command that cannot reach the database says so in two lines and exits 1
(frontservice/unreachable.py); `--traceback` shows the traceback instead.
"""

import os
import sys

from frontservice.unreachable import database_unreachable


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "frontservice.settings")
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except Exception as exc:
        if "--traceback" in sys.argv:
            raise
        message = database_unreachable(exc)
        if message is None:
            raise
        sys.stderr.write(message + "\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
