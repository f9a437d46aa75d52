#!/usr/bin/python3
"""fetch_server: a real HTTP server (http.server) for test_ap_fetch.c.

Listens on 127.0.0.1 on a free port and prints "port N" on stdout once it
accepts connections. Each request's path is appended to --log (one line,
written before the answer is sent), so the test can tell whether a request
arrived at all.

Paths:
  /actor          200, a small activity+json document
  /headers        200, the request's headers as the body ("Name: value" lines)
  /big            200, 2 MiB of "a"
  /slow           sleeps 3 s, then 200
  /redir-private  302 to http://10.0.0.1/
  /redir-ok       302 to /actor
  /redir-loop     302 to /redir-loop
  anything else   404
"""
import argparse
import http.server
import sys
import time

ACTOR = b'{"id":"http://127.0.0.1/actor","type":"Person"}'


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, body, ctype="application/activity+json", location=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if location:
            self.send_header("Location", location)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self):
        with open(self.server.log_path, "a") as f:
            f.write(self.path + "\n")
        if self.path == "/actor":
            self.answer(200, ACTOR)
        elif self.path == "/headers":
            body = "".join("%s: %s\n" % (k, v) for k, v in self.headers.items())
            self.answer(200, body.encode(), "text/plain")
        elif self.path == "/big":
            self.answer(200, b"a" * (2 * 1024 * 1024))
        elif self.path == "/slow":
            time.sleep(3)
            self.answer(200, ACTOR)
        elif self.path == "/redir-private":
            self.answer(302, b"", "text/plain", "http://10.0.0.1/")
        elif self.path == "/redir-ok":
            self.answer(302, b"", "text/plain", "/actor")
        elif self.path == "/redir-loop":
            self.answer(302, b"", "text/plain", "/redir-loop")
        else:
            self.answer(404, b"not found", "text/plain")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that hang up on purpose (body cap, timeout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    srv = Server(("127.0.0.1", 0), Handler)
    srv.log_path = args.log
    open(args.log, "w").close()
    sys.stdout.write("port %d\n" % srv.server_address[1])
    sys.stdout.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
