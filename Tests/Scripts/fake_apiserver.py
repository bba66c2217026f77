#!/usr/bin/env python3
"""A stand-in for kube-apiserver, for tests only (a test double: no kube-apiserver can
run on the machines the tests run on).

It speaks the parts of the API server's wire protocol the cluster cache uses, the way
the real one speaks them:
- HTTPS (the certificate given), bearer tokens checked against a token file re-read on
  every request (so a test can rotate it), or client certificates signed by --client-ca;
  401 with a Status otherwise.
- LIST of secrets (core/v1) and of atlasstreamconnections, atlasstreaminstances and
  atlasprojects (atlas.mongodb.com/v1), cluster-wide or in a namespace, with `limit`
  and `continue` pages, `labelSelector` (key=value[,key=value]), the collection's
  resourceVersion, and `PartialObjectMetadataList` when the Accept header asks for it
  (objects reduced to their metadata: a Secret's data never leaves).
- WATCH (`watch=1`) from a resourceVersion: a chunked stream of newline-ended JSON
  events (ADDED, MODIFIED, DELETED, as label selectors filter them: an object leaving
  the selection is DELETED), BOOKMARK events when `allowWatchBookmarks=true`, the end
  of the stream after `timeoutSeconds`, and, for a resourceVersion older than the
  compacted one, HTTP 200 with one ERROR event carrying a 410 Status (as the real
  server does), or HTTP 410 for an expired `continue` token.

A test drives it through stdin, one JSON command per line, each acknowledged by a line
`ok` (or a JSON answer) on stdout: put/delete objects, and faults (fail the next
requests with a code, drop every open watch without ending it, compact history, slow
lists, forbid a resource, shorten watches, count requests).
"""
import argparse
import base64
import json
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RESOURCES = {
    ("", "secrets"): ("v1", "Secret"),
    ("atlas.mongodb.com", "atlasstreamconnections"): ("atlas.mongodb.com/v1", "AtlasStreamConnection"),
    ("atlas.mongodb.com", "atlasstreaminstances"): ("atlas.mongodb.com/v1", "AtlasStreamInstance"),
    ("atlas.mongodb.com", "atlasprojects"): ("atlas.mongodb.com/v1", "AtlasProject"),
}
KIND_TO_PLURAL = {kind: plural for (_, plural), (_, kind) in RESOURCES.items()}


class State:
    def __init__(self):
        self.lock = threading.Condition()
        self.rv = 100
        self.objects = {}       # (plural, ns, name) -> object
        self.history = []       # (rv, plural, type, old, new)
        self.compacted = 0
        self.fail = []          # [code, ...] for the next requests
        self.forbidden = set()  # plurals answered 403
        self.slow_list = 0.0
        self.max_watch = None   # seconds a watch may last at most
        self.bookmark_interval = 1.0
        self.watches = []       # open watch sockets
        self.requests = {}      # "list secrets" -> count
        self.continue_tokens_expire = False

    def count(self, key):
        self.requests[key] = self.requests.get(key, 0) + 1


STATE = State()


def labels_match(obj, selector):
    if not selector:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in selector.split(","):
        if "=" not in term:
            return False
        key, value = term.split("=", 1)
        key = key.rstrip("=").rstrip("!")
        if labels.get(key) != value:
            return False
    return True


def partial(obj):
    return {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": obj.get("metadata", {})}


def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def authenticated(self):
        if self.server.client_ca:
            try:
                if self.connection.getpeercert():
                    return True
            except Exception:
                pass
        header = self.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return False
        try:
            with open(self.server.token_file) as f:
                accepted = f.read().strip()
        except OSError:
            return False
        return header[len("Bearer "):] == accepted

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        parts = [p for p in url.path.split("/") if p]
        # /api/v1[/namespaces/ns]/plural or /apis/group/v1[/namespaces/ns]/plural
        group, rest = None, None
        if parts[:2] == ["api", "v1"]:
            group, rest = "", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis" and parts[2] == "v1":
            group, rest = parts[1], parts[3:]
        namespace = None
        if rest is not None and len(rest) == 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if rest is None or len(rest) != 1 or (group, rest[0]) not in RESOURCES:
            return self.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))
        plural = rest[0]
        if not self.authenticated():
            return self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
        watching = query.get("watch") in ("1", "true")
        with STATE.lock:
            STATE.count(("watch " if watching else "list ") + plural)
            if STATE.fail:
                code = STATE.fail.pop(0)
                return self.send_json(code, status(code, "InternalError", "injected failure"))
            if plural in STATE.forbidden:
                scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
                return self.send_json(403, status(403, "Forbidden",
                                                  f'{plural} is forbidden: User "system:serviceaccount:test:webhook" cannot '
                                                  f'{"watch" if watching else "list"} resource "{plural}" in API group "{group}" {scope}'))
        metadata_only = "as=PartialObjectMetadata" in self.headers.get("Accept", "")
        selector = query.get("labelSelector", "")
        if watching:
            return self.watch(plural, namespace, selector, metadata_only, query)
        return self.list(plural, namespace, selector, metadata_only, query)

    def selected(self, plural, namespace, selector):
        return sorted(((key, obj) for key, obj in STATE.objects.items()
                       if key[0] == plural and (namespace is None or key[1] == namespace) and labels_match(obj, selector)),
                      key=lambda item: item[0])

    def list(self, plural, namespace, selector, metadata_only, query):
        if STATE.slow_list:
            time.sleep(STATE.slow_list)
        limit = int(query.get("limit", "0") or "0")
        token = query.get("continue")
        with STATE.lock:
            if token:
                decoded = json.loads(base64.b64decode(token))
                if STATE.continue_tokens_expire or decoded["rv"] < STATE.compacted:
                    return self.send_json(410, status(410, "Expired",
                                                      "The provided continue parameter is too old to display a consistent list result."))
                rv, offset = decoded["rv"], decoded["offset"]
            else:
                rv, offset = STATE.rv, 0
            items = [obj for _, obj in self.selected(plural, namespace, selector)]
            page = items[offset:offset + limit] if limit > 0 else items[offset:]
            next_offset = offset + len(page)
            more = limit > 0 and next_offset < len(items)
            api_version, kind = RESOURCES[("" if plural == "secrets" else "atlas.mongodb.com", plural)]
            body = {
                "apiVersion": "meta.k8s.io/v1" if metadata_only else api_version,
                "kind": "PartialObjectMetadataList" if metadata_only else kind + "List",
                "metadata": {"resourceVersion": str(rv)},
                "items": [partial(o) if metadata_only else o for o in page],
            }
            if more:
                body["metadata"]["continue"] = base64.b64encode(json.dumps({"rv": rv, "offset": next_offset}).encode()).decode()
        self.send_json(200, body)

    def chunk(self, data):
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def event(self, kind, obj, metadata_only):
        return (json.dumps({"type": kind, "object": partial(obj) if metadata_only else obj}) + "\n").encode()

    def watch(self, plural, namespace, selector, metadata_only, query):
        since = int(query.get("resourceVersion", "0") or "0")
        timeout = float(query.get("timeoutSeconds", "1800"))
        if STATE.max_watch is not None:
            timeout = min(timeout, STATE.max_watch)
        bookmarks = query.get("allowWatchBookmarks") == "true"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        with STATE.lock:
            STATE.watches.append(self.connection)
            too_old = since < STATE.compacted
        try:
            if too_old:
                gone = status(410, "Expired", f"too old resource version: {since} ({STATE.compacted})")
                self.chunk((json.dumps({"type": "ERROR", "object": gone}) + "\n").encode())
                self.chunk(b"")
                return
            deadline = time.monotonic() + timeout
            next_bookmark = time.monotonic() + STATE.bookmark_interval
            position = since
            while time.monotonic() < deadline:
                out = []
                with STATE.lock:
                    for rv, p, kind, old, new in STATE.history:
                        if rv <= position or p != plural:
                            continue
                        obj = new if new is not None else old
                        if namespace is not None and obj["metadata"].get("namespace") != namespace:
                            continue
                        was = old is not None and labels_match(old, selector)
                        now = new is not None and labels_match(new, selector)
                        if was and now:
                            out.append(self.event("MODIFIED", new, metadata_only))
                        elif now:
                            out.append(self.event("ADDED", new, metadata_only))
                        elif was:
                            gone_obj = json.loads(json.dumps(old))
                            gone_obj["metadata"]["resourceVersion"] = str(rv)
                            out.append(self.event("DELETED", gone_obj, metadata_only))
                    position = STATE.rv
                    if not out:
                        STATE.lock.wait(timeout=0.1)
                for data in out:
                    self.chunk(data)
                if bookmarks and time.monotonic() >= next_bookmark:
                    next_bookmark = time.monotonic() + STATE.bookmark_interval
                    self.chunk(self.event("BOOKMARK", {"kind": "Bookmark", "apiVersion": "v1",
                                                       "metadata": {"resourceVersion": str(position)}}, False))
            self.chunk(b"")
        except (OSError, ValueError):
            pass
        finally:
            with STATE.lock:
                if self.connection in STATE.watches:
                    STATE.watches.remove(self.connection)


def command(line):
    cmd = json.loads(line)
    op = cmd["op"]
    with STATE.lock:
        if op == "put":
            obj = cmd["object"]
            plural = KIND_TO_PLURAL[obj["kind"]]
            meta = obj.setdefault("metadata", {})
            key = (plural, meta.get("namespace", ""), meta["name"])
            STATE.rv += 1
            meta["resourceVersion"] = str(STATE.rv)
            old = STATE.objects.get(key)
            STATE.objects[key] = obj
            STATE.history.append((STATE.rv, plural, "put", old, obj))
        elif op == "delete":
            key = (KIND_TO_PLURAL[cmd["kind"]], cmd["namespace"], cmd["name"])
            old = STATE.objects.pop(key, None)
            if old is not None:
                STATE.rv += 1
                STATE.history.append((STATE.rv, key[0], "delete", old, None))
        elif op == "fail":
            STATE.fail += [cmd.get("code", 500)] * cmd.get("count", 1)
        elif op == "forbid":
            STATE.forbidden = set(cmd.get("resources", []))
        elif op == "slow_list":
            STATE.slow_list = cmd["seconds"]
        elif op == "max_watch":
            STATE.max_watch = cmd["seconds"]
        elif op == "compact":
            STATE.compacted = STATE.rv + 1
            STATE.history = []
        elif op == "expire_continue":
            STATE.continue_tokens_expire = cmd.get("on", True)
        elif op == "drop_watches":
            for connection in STATE.watches:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            STATE.watches = []
        elif op == "stats":
            return json.dumps({"requests": STATE.requests, "open_watches": len(STATE.watches), "rv": STATE.rv})
        else:
            return "unknown op " + op
        STATE.lock.notify_all()
    return "ok"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--client-ca")
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.token_file = args.token_file
    server.client_ca = args.client_ca
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        context.load_verify_locations(args.client_ca)
        context.verify_mode = ssl.CERT_OPTIONAL
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    original = server.get_request

    def get_request():
        connection, address = original()
        connection.settimeout(10)
        return connection, address
    server.get_request = get_request

    def finish_handshake(request, client_address):
        try:
            request.do_handshake()
        except (OSError, ssl.SSLError):
            return False
        return True
    server.verify_request = finish_handshake
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"listening {server.server_address[1]}", flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            answer = command(line)
        except Exception as error:  # a bad command is the test's mistake: say so
            answer = f"error {error!r}"
        print(answer, flush=True)


if __name__ == "__main__":
    main()
