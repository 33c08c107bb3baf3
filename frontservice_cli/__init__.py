"""FrontService's command-line client: `python -m frontservice_cli --help`.

It needs nothing of the server's code, only `requests` and `tqdm`, so it can be copied to any
machine that talks to the API.
"""

__version__ = "0.1.0"
