"""A Flock app in Python, standard library only.

Flock gives every instance its port in PORT and the release it runs in
FLOCK_RELEASE, and stops it with SIGTERM.
"""

import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("PORT", "3000"))
RELEASE = os.environ.get("FLOCK_RELEASE", "dev")
GREETING = os.environ.get("GREETING", "Hello from Flock")


class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{GREETING} (release {RELEASE})\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print(f"{self.address_string()} {fmt % args}", flush=True)


def main():
    server = ThreadingHTTPServer(("", PORT), Hello)
    # shutdown() waits for serve_forever to return, so call it from another
    # thread; the requests in flight finish first.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"hello-python {RELEASE} listening on port {PORT}", flush=True)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
