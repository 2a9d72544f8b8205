"""A webhook receiver, run as its own process by the tests: verifies every request with the
``standardwebhooks`` library, unchanged, and answers what the test scripted.

Usage: ``python webhook_receiver.py DIRECTORY PORT``. In DIRECTORY it reads, on every request,
``secrets.json`` (a list of secrets) and ``script.json`` (a list of answers still to give,
each ``{"status": 500, "headers": {...}}``; the first is taken and removed; when the list
is empty it answers 204), and appends one JSON line per request to ``requests.jsonl``:
path, headers, body, and for each secret whether the request verified with it.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

LOCK = threading.Lock()


def _verified(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    try:
        Webhook(secret).verify(body, headers)
    except (WebhookVerificationError, ValueError):
        return False
    return True


class Handler(BaseHTTPRequestHandler):
    directory: Path

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        with LOCK:
            secrets = json.loads((self.directory / "secrets.json").read_text())
            script_file = self.directory / "script.json"
            script = json.loads(script_file.read_text()) if script_file.exists() else []
            answer: dict[str, Any] = script.pop(0) if script else {"status": 204}
            script_file.write_text(json.dumps(script))
            record = {
                "path": self.path,
                "headers": headers,
                "body": body.decode(),
                "verified": [_verified(s, body, headers) for s in secrets],
                "answered": answer["status"],
            }
            with (self.directory / "requests.jsonl").open("a") as out:
                out.write(json.dumps(record) + "\n")
        self.send_response(answer["status"])
        for name, value in answer.get("headers", {}).items():
            self.send_header(name, value)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


def main() -> None:
    directory, port = Path(sys.argv[1]), int(sys.argv[2])
    Handler.directory = directory
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
