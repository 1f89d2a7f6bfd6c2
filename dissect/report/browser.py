"""A minimal headless-Chromium driver over the DevTools protocol on a pipe (stdlib only).

Chromium started with ``--remote-debugging-pipe`` reads DevTools commands on fd 3 and writes
replies and events on fd 4, each message a JSON object ended by a NUL byte. That is all the
report's browser test and screenshot script need (load a ``file://`` page, evaluate JS, type,
collect console errors, take a screenshot), so no selenium, chromedriver or websocket package is
required: only a Chromium binary (Debian ``chromium``).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

#: Binaries tried, in order, after ``$DISSECT_CHROMIUM``.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
                  "chrome")

#: Flags for a quiet, isolated, network-free headless run, with file:// pages treated as a
#: user's browser treats them (no ``--allow-file-access-from-files``: fetch()/XHR of local
#: files stay blocked, which the report must not need).
BASE_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
    "--disable-default-apps", "--mute-audio",
)
#: The default flags: :data:`BASE_FLAGS` plus file access from file:// pages.
CHROMIUM_FLAGS = (*BASE_FLAGS, "--allow-file-access-from-files")


class BrowserError(RuntimeError):
    """Chromium failed to start, exited, timed out, or answered a command with an error."""


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary (``$DISSECT_CHROMIUM`` first), or None."""
    env = os.environ.get("DISSECT_CHROMIUM")
    if env and Path(env).is_file():
        return env
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _high_dup(fd: int) -> int:
    """Duplicate ``fd`` to a number >= 10 (so dup2 onto 3 and 4 clobbers nothing)."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


class Chromium:
    """Headless Chromium with one page, driven over the DevTools pipe.

    Use as a context manager: ``with Chromium(width=1280, height=900) as b: b.goto(url)``.
    Console messages, uncaught exceptions and log entries (e.g. failed loads) are collected in
    :attr:`console`, each ``{"level", "text"}``. ``flags``: Chromium's command-line flags
    (:data:`BASE_FLAGS` for the file:// policy of a user's browser).

    Raises:
        BrowserError: no binary, a start failure, a timeout, or a DevTools error reply.
    """

    def __init__(self, binary: str | None = None, width: int = 1280, height: int = 900,
                 timeout_s: float = 30.0, flags: tuple[str, ...] = CHROMIUM_FLAGS):
        self.binary = binary or find_chromium()
        if not self.binary:
            raise BrowserError("no Chromium binary found (install Debian `chromium` or set "
                               "DISSECT_CHROMIUM)")
        self.width, self.height, self.timeout_s = width, height, timeout_s
        self.flags = tuple(flags)
        self.console: list[dict[str, str]] = []
        self._id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._closed = False
        self.session: str | None = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Chromium:
        self._profile = tempfile.mkdtemp(prefix="dissect-chromium-")
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        to_r, from_w = _high_dup(to_r), _high_dup(from_w)

        def child_fds() -> None:  # runs in the child before exec
            os.dup2(to_r, 3)
            os.dup2(from_w, 4)

        args = [self.binary, *self.flags, "--remote-debugging-pipe",
                f"--user-data-dir={self._profile}", f"--window-size={self.width},{self.height}",
                "about:blank"]
        try:
            self._proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, preexec_fn=child_fds, close_fds=False)
        finally:
            os.close(to_r)
            os.close(from_w)
        self._out = os.fdopen(to_w, "wb", buffering=0)
        self._in = os.fdopen(from_r, "rb", buffering=0)
        self._stderr_tail: list[bytes] = []
        threading.Thread(target=self._read_loop, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        try:
            self._attach()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.send("Browser.close", timeout_s=5)
        with contextlib.suppress(Exception):
            self._out.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        shutil.rmtree(self._profile, ignore_errors=True)

    def _drain_stderr(self) -> None:
        for line in self._proc.stderr:
            self._stderr_tail = (self._stderr_tail + [line])[-20:]

    def _read_loop(self) -> None:
        buf = b""
        while True:
            chunk = self._in.read(1 << 16)
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self._cond:
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self._on_event(msg)
                    self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _on_event(self, msg: dict[str, Any]) -> None:
        self._events.append(msg)
        method, p = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])
            self.console.append({"level": p["type"], "text": text})
        elif method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            text = d.get("exception", {}).get("description") or d.get("text", "")
            self.console.append({"level": "error", "text": f"uncaught: {text}"})
        elif method == "Log.entryAdded":
            e = p["entry"]
            self.console.append({"level": e["level"], "text": f"{e.get('url', '')} {e['text']}"})

    # ------------------------------------------------------------------ protocol
    def send(self, method: str, params: dict[str, Any] | None = None, *,
             session: bool = True, timeout_s: float | None = None) -> dict[str, Any]:
        """Send one DevTools command (to the page session unless ``session=False``)."""
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        self._out.write(json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        with self._cond:
            while self._id not in self._replies:
                left = deadline - time.monotonic()
                if self._closed:
                    tail = b"".join(self._stderr_tail).decode(errors="replace")
                    raise BrowserError(f"Chromium exited during {method}: {tail[-2000:]}")
                if left <= 0:
                    raise BrowserError(f"DevTools {method}: no reply in {timeout_s} s")
                self._cond.wait(left)
            reply = self._replies.pop(self._id)
        if "error" in reply:
            raise BrowserError(f"DevTools {method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(self, method: str, timeout_s: float | None = None) -> dict[str, Any]:
        """Wait for (and consume) the next event named ``method``."""
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        with self._cond:
            while True:
                for i, e in enumerate(self._events):
                    if e.get("method") == method:
                        return self._events.pop(i).get("params", {})
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise BrowserError(f"no {method} event in {timeout_s or self.timeout_s} s")
                self._cond.wait(left)

    def _attach(self) -> None:
        targets = self.send("Target.getTargets", session=False)["targetInfos"]
        pages = [t for t in targets if t["type"] == "page"]
        if pages:
            target = pages[0]["targetId"]
        else:
            target = self.send("Target.createTarget", {"url": "about:blank"},
                               session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", {
            "width": self.width, "height": self.height, "deviceScaleFactor": 1,
            "mobile": False})

    # ------------------------------------------------------------------ helpers
    def goto(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self._events = [e for e in self._events if e.get("method") != "Page.loadEventFired"]
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"navigation to {url} failed: {result['errorText']}")
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str, await_promise: bool = False) -> Any:
        """Evaluate JS in the page; return its JSON value; raise on a thrown exception."""
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": await_promise})
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise BrowserError(f"JS error: {d.get('exception', {}).get('description', d)}")
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float | None = None,
                 poll_s: float = 0.02) -> Any:
        """Evaluate ``expression`` until it is truthy; return that value.

        Raises:
            BrowserError: still falsy after ``timeout_s`` (default: the browser's timeout).
        """
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"still false after {timeout_s or self.timeout_s} s: "
                                   f"{expression[:200]}")
            time.sleep(poll_s)

    def type_text(self, selector: str, text: str) -> None:
        """Focus ``selector`` and type ``text`` as keyboard input (fires ``input`` events)."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        for ch in text:
            self.send("Input.insertText", {"text": ch})

    def screenshot(self, path: str | Path, full_page: bool = False) -> Path:
        """Save a PNG screenshot of the viewport (or the whole page)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
        data = base64.b64decode(self.send("Page.captureScreenshot", params)["data"])
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def errors(self) -> list[dict[str, str]]:
        """Collected console entries at level ``error``."""
        return [c for c in self.console if c["level"] == "error"]
