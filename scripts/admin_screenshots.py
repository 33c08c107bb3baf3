"""Screenshots of the admin in headless Chromium, to look at what an operator sees.

    python scripts/admin_screenshots.py --url http://127.0.0.1:8000 --user admin \
        --password '...' --retry JOB_ID --out /tmp/shots

Logs in, then saves the job list (1366x768, a laptop screen), the page of the job to retry, and
its History after the "Retry selected jobs" action. Chromium is driven over the DevTools protocol
on a pipe (`--remote-debugging-pipe`), so nothing but the standard library and a `chromium`
binary is needed. A fresh profile per run; Chromium is stopped by its PID.
"""

import argparse
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
]


class Browser:
    """One page, driven over the DevTools pipe (fd 3 in, fd 4 out, NUL-separated JSON)."""

    def __init__(self, binary: str, profile: str) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Chromium reads commands from fd 3 and writes answers to fd 4: the shell puts the pipes
        # there, then becomes Chromium (exec), so the PID is Chromium's.
        argv = [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"]
        self.process = subprocess.Popen(
            ["sh", "-c", f'exec "$@" 3<&{to_browser_r} 4>&{from_browser_w}', "sh", *argv],
            pass_fds=(to_browser_r, from_browser_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.call("Page.enable", session=True)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=1366,
            height=768,
            deviceScaleFactor=1,
            mobile=False,
        )

    def _read(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def call(self, method: str, *, session: bool = False, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._read()
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    def _wait_for_load(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._read().get("method") == "Page.loadEventFired":
                return
        raise RuntimeError("the page did not load")

    def goto(self, url: str) -> None:
        self.call("Page.navigate", session=True, url=url)
        self._wait_for_load()

    def submit(self, script: str) -> None:
        """Run `script`, which submits a form, and wait for the next page."""
        self.call("Runtime.evaluate", session=True, expression=script)
        self._wait_for_load()

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        print(f"saved {path}")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--retry", required=True, metavar="JOB_ID", help="a job to retry")
    parser.add_argument("--out", type=Path, default=Path("var/screenshots"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    admin = f"{args.url}/admin/jobs/job/"

    with tempfile.TemporaryDirectory() as profile:
        browser = Browser(args.chromium, profile)
        try:
            browser.goto(f"{args.url}/admin/login/?next=/admin/jobs/job/")
            browser.submit(
                f"document.getElementById('id_username').value = {json.dumps(args.user)};"
                f"document.getElementById('id_password').value = {json.dumps(args.password)};"
                "document.getElementById('login-form').submit();"
            )
            browser.screenshot(args.out / "job-list.png")
            browser.goto(f"{admin}{args.retry}/change/")
            browser.screenshot(args.out / "job-page.png")
            browser.goto(f"{admin}?q={args.retry}")
            browser.submit(
                "document.querySelector('input[name=_selected_action]').checked = true;"
                "document.querySelector('select[name=action]').value = 'retry_selected_jobs';"
                "document.getElementById('changelist-form').submit();"
            )
            browser.screenshot(args.out / "after-retry.png")
            browser.goto(f"{admin}{args.retry}/history/")
            browser.screenshot(args.out / "history.png")
        finally:
            browser.close()


if __name__ == "__main__":
    main()
