#!/usr/bin/env python3
"""A stand-in for kube-apiserver, for tests only (a test double: no kube-apiserver can
run on the machines the tests run on).

It speaks the parts of the API server's wire protocol the cluster cache uses, the way
the real one speaks them:
- HTTPS (the certificate given, replaceable while running), bearer tokens checked
  against a token file re-read on every request (so a test can rotate it), or client
  certificates signed by --client-ca; 401 with a Status otherwise.
- LIST of secrets (core/v1) and of atlasstreamconnections, atlasstreaminstances and
  atlasprojects (atlas.mongodb.com/v1), cluster-wide or in a namespace, with `limit`
  and `continue` pages, `labelSelector` (key=value[,key=value]), the collection's
  resourceVersion, and `PartialObjectMetadataList` when the Accept header asks for it
  (objects reduced to their metadata: a Secret's data never leaves). An answer over
  4 MiB is sent with chunked transfer encoding, written item by item (as the real
  server, written in Go, sends any large answer); a smaller one with a Content-Length.
- WATCH (`watch=1`) from a resourceVersion: a chunked stream of newline-ended JSON
  events (ADDED, MODIFIED, DELETED, as label selectors filter them: an object leaving
  the selection is DELETED), BOOKMARK events when `allowWatchBookmarks=true`, the end
  of the stream after `timeoutSeconds`, and, for a resourceVersion older than the
  compacted one, HTTP 200 with one ERROR event carrying a 410 Status (as the real
  server does), or HTTP 410 for an expired `continue` token.
- GET, POST (create), PUT (update), PATCH (application/merge-patch+json) and DELETE of
  one object, for every resource above and PolicyReports (wgpolicyk8s.io/v1alpha2) and
  Leases (coordination.k8s.io/v1): 201 on create with a new uid, 409 AlreadyExists for a
  name taken, 409 Conflict for an update or patch whose metadata.resourceVersion is not
  the stored one, 422 for a custom resource's update without one (as for CRDs), 404
  NotFound for a missing object, each change a watch event like any other.
- Failures as a Status body with the HTTP status as its `code` and the real server's
  `reason` for it (TooManyRequests for 429, with `Retry-After` and
  `details.retryAfterSeconds` when one is given).

A test drives it through stdin, one JSON command per line, each acknowledged by a line
`ok` (or a JSON answer) on stdout, or `error ...`/`unknown op ...` for a bad command:
- objects: `put` {object}, `bulk_put` {objects}, `delete` {kind, namespace, name},
  `bulk_secrets` {namespace, count, prefix, labelled, data_bytes, annotation_bytes}
  (Secrets P-0..P-(N-1) as `kubectl apply` leaves them: about data_bytes of base64
  data, and when annotation_bytes > 0 a last-applied-configuration annotation of about
  that size, plus the managedFields the server adds; large strings are shared between
  the objects, so 200 Secrets of 2 x 900 KB cost about 200 x 900 KB);
- counting: `stats` (JSON: `requests` by what they were, such as `list secrets`,
  `watch atlasprojects`, `create policyreports`, `update leases` or `redirected`; `request_log`, the last 2,000 requests as
  {t: monotonic seconds, what, query} (`authorized` too for `redirected`);
  `redirected_authorized`; `open_watches`; `rv`), `clear_log`;
- failing requests, each request taking at most one, in this order: `reset` {count}
  (the next requests' TCP connections are reset once their request is read: SO_LINGER
  0, then close, nothing answered), `redirect` {count, location} (302 to location; any
  GET of a path starting with /redirected is counted as `redirected`, whether it
  carried an Authorization header or not), `fail` {code, count, retry_after,
  body_code} (an HTTP `code` answer whose Status body may claim another code), and
  `forbid` {resources} (403 for those plurals until changed);
- slow or wrong lists: `slow_list` {seconds}, `hold_lists` {on} (LIST requests are
  read and then not answered at all until turned off), `trickle_lists` {interval}
  (LIST bodies, with their Content-Length, sent a byte every `interval` seconds; 0:
  off), `expire_continue` {on}, `malformed` {what: list_json (the next LIST answers
  200 with a body that is not JSON), rv_type (the next LIST's resourceVersion is a
  number), event_json (the next watch stream to send, open or new, sends a line that
  is not JSON)}, `oversize` {what, bytes} (what: `list`, the next LIST answers a list
  whose single item carries an annotation of `bytes`; `event`, the next watch stream
  that has an object sends a MODIFIED event of it padded likewise; `endless_chunk`, the
  next watch stream announces a chunk of 0x7fffffff bytes and fills it with an
  unfinished JSON string while the client reads, for 60 s at most; each written piece
  by piece, never whole in memory; null: off);
- wrong watches: `max_watch` {seconds} (no watch lasts longer), `bookmark_interval`
  {seconds}, `compact` (history before now is gone: a watch from before gets the 410
  ERROR event), `gone` {on} (every watch gets that 410 ERROR event while on),
  `drop_watches` (every open watch connection is shut down without the end of its
  stream), `stall_watches` {on} (while on, no watch stream sends anything, not even a
  new one's response headers, nor ends; the connections stay open; once off, streams
  go on with what is pending), `watch_events_then_close` {count} (each watch, open or
  new, sends at most `count` events, BOOKMARKs included, a BOOKMARK at once when nothing
  is pending and bookmarks were asked for, then ends its stream properly; null or
  absent: off);
- `rotate_certificate` {cert, key}: new connections are served with this certificate;
- writes: `missing` {resources} (those plurals are not installed, as a CRD that is not:
  404 for every request), `conflict` {resource, count} (the next `count` updates of that
  plural lose to a concurrent writer: the stored object moves to a new resourceVersion
  first, so the update's precondition fails with 409), `get` {resource, namespace, name}
  (the stored object as JSON, or null), `objects` {resource} (every stored object of that
  plural, as a JSON list).
"""
import argparse
import base64
import bisect
import collections
import itertools
import json
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RESOURCES = {
    ("", "secrets"): ("v1", "Secret"),
    ("atlas.mongodb.com", "atlasstreamconnections"): ("atlas.mongodb.com/v1", "AtlasStreamConnection"),
    ("atlas.mongodb.com", "atlasstreaminstances"): ("atlas.mongodb.com/v1", "AtlasStreamInstance"),
    ("atlas.mongodb.com", "atlasprojects"): ("atlas.mongodb.com/v1", "AtlasProject"),
    ("wgpolicyk8s.io", "policyreports"): ("wgpolicyk8s.io/v1alpha2", "PolicyReport"),
    ("coordination.k8s.io", "leases"): ("coordination.k8s.io/v1", "Lease"),
}
GROUP_OF = {plural: group for (group, plural) in RESOURCES}
# Custom resources refuse an update without metadata.resourceVersion; built-in Leases take one.
UNCONDITIONAL_UPDATES = {"leases", "secrets"}
KIND_TO_PLURAL = {kind: plural for (_, plural), (_, kind) in RESOURCES.items()}
REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
           409: "Conflict", 410: "Expired", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
           503: "ServiceUnavailable", 504: "Timeout"}
LARGE_BODY = 4 * 1024 * 1024  # a LIST answer larger than this is streamed, chunked
PIECE = 256 * 1024            # the most written at once when streaming (besides one whole item)
LOG_LENGTH = 2000
PADDING_ANNOTATION = "test.atlas.mongodb.com/padding"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


class State:
    def __init__(self):
        self.lock = threading.Condition()
        self.rv = 100
        self.objects = {}       # (plural, ns, name) -> object (never changed once stored: replaced)
        self.history = []       # (rv, plural, type, old, new), in rv order
        self.compacted = 0
        self.selections = {}    # (plural, ns, selector) -> sorted objects, until the next change
        self.forbidden = set()  # plurals answered 403
        self.slow_list = 0.0
        self.max_watch = None   # seconds a watch may last at most
        self.bookmark_interval = 1.0
        self.watches = []       # open watch sockets
        self.requests = {}      # "list secrets" -> count
        self.request_log = collections.deque(maxlen=LOG_LENGTH)
        self.redirected_authorized = 0
        self.continue_tokens_expire = False
        # Faults: each request takes at most one of these three, in this order.
        self.resets = 0
        self.redirects = 0
        self.redirect_location = ""
        self.fail = []          # [{"code", "retry_after", "body_code"}, ...] for the next requests
        self.hold_lists = False
        self.trickle = 0.0      # seconds between the bytes of a LIST answer
        self.stall_watches = False
        self.gone = False
        self.events_then_close = None  # events a watch sends before it ends
        self.malformed = []     # pending "list_json", "rv_type", "event_json", in order
        self.oversize = None    # {"what", "bytes"}, once
        self.missing = set()    # plurals whose resource is not installed (404 for everything)
        self.conflicts = {}     # plural -> updates still to lose to a concurrent writer

    def count(self, what, query, **details):
        self.requests[what] = self.requests.get(what, 0) + 1
        self.request_log.append({"t": time.monotonic(), "what": what, "query": query, **details})

    def next_fault(self):
        """The fault the request being answered takes, if any (call with the lock held)."""
        if self.resets > 0:
            self.resets -= 1
            return "reset", None
        if self.redirects > 0:
            self.redirects -= 1
            return "redirect", self.redirect_location
        if self.fail:
            return "fail", self.fail.pop(0)
        return None

    def take_malformed(self, *whats):
        for what in self.malformed:
            if what in whats:
                self.malformed.remove(what)
                return what
        return None

    def take_oversize(self, what):
        if self.oversize is None or self.oversize["what"] != what:
            return None
        taken, self.oversize = self.oversize, None
        return taken

    def selected(self, plural, namespace, selector):
        """The objects a LIST or WATCH selects, sorted by namespace and name (call with the lock held)."""
        key = (plural, namespace, selector)
        if key not in self.selections:
            self.selections[key] = [obj for (p, ns, _), obj in sorted(self.objects.items(), key=lambda item: item[0])
                                    if p == plural and (namespace is None or ns == namespace) and labels_match(obj, selector)]
        return self.selections[key]

    def put(self, obj):
        """Stores `obj` at the next resourceVersion, created or replaced (call with the lock held)."""
        plural = KIND_TO_PLURAL[obj["kind"]]
        meta = obj.setdefault("metadata", {})
        key = (plural, meta.get("namespace", ""), meta["name"])
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        old = self.objects.get(key)
        self.objects[key] = obj
        self.history.append((self.rv, plural, "put", old, obj))
        self.selections = {}

    def delete(self, key):
        old = self.objects.pop(key, None)
        if old is not None:
            self.rv += 1
            self.history.append((self.rv, key[0], "delete", old, None))
            self.selections = {}


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


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = merge_patch(target.get(key), value)
    return target


def partial(obj):
    return {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": obj.get("metadata", {})}


def status(code, reason, message, details=None):
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason}
    if details:
        body["details"] = details
    body["code"] = code
    return body


def bulk_secrets(namespace, count, prefix, labelled, data_bytes, annotation_bytes):
    """Puts Secrets `prefix-0`... as `kubectl apply` leaves them (call with the lock held).

    The password (base64 of "AAA...") carries the bulk of `data_bytes`; the
    last-applied-configuration is the applied Secret's compact JSON, as kubectl writes
    it, its password sized so that the whole is about `annotation_bytes`. The data,
    labels and managedFields are shared by all the Secrets; the metadata and the
    annotation (which names its object) are each their own, made without JSON encoding.
    """
    username = base64.b64encode(b"admin").decode()
    data = {"username": username, "password": "QUFB" * max(0, (data_bytes - len(username)) // 4)}
    labels = {"atlas.mongodb.com/type": "credentials"} if labelled else None
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    fields = {"f:data": {".": {}, "f:password": {}, "f:username": {}}, "f:type": {}}
    if labels or annotation_bytes > 0:
        fields["f:metadata"] = {}
    if annotation_bytes > 0:
        fields["f:metadata"]["f:annotations"] = {".": {}, "f:" + LAST_APPLIED: {}}
    if labels:
        fields["f:metadata"]["f:labels"] = {".": {}, "f:atlas.mongodb.com/type": {}}
    managed_fields = [{"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "v1",
                       "time": created, "fieldsType": "FieldsV1", "fieldsV1": fields}]
    applied_before = applied_after = None
    if annotation_bytes > 0:
        name_marker, password_marker = "\x00name\x00", "\x00password\x00"
        applied = {"apiVersion": "v1", "data": {"password": password_marker, "username": username}, "kind": "Secret",
                   "metadata": {"annotations": {}, "name": name_marker, "namespace": namespace}, "type": "Opaque"}
        if labels:
            applied["metadata"]["labels"] = labels
        template = json.dumps(applied, separators=(",", ":"), sort_keys=True) + "\n"
        encoded_password, encoded_name = json.dumps(password_marker)[1:-1], json.dumps(name_marker)[1:-1]
        overhead = len(template) - len(encoded_password) - len(encoded_name) + len(f"{prefix}-{count}")
        template = template.replace(encoded_password, "QUFB" * max(0, (annotation_bytes - overhead) // 4))
        applied_before, applied_after = template.split(encoded_name)
    for i in range(count):
        name = f"{prefix}-{i}"
        metadata = {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()), "creationTimestamp": created}
        if labels:
            metadata["labels"] = labels
        if applied_before is not None:
            metadata["annotations"] = {LAST_APPLIED: "".join((applied_before, name, applied_after))}
        metadata["managedFields"] = managed_fields
        STATE.put({"kind": "Secret", "apiVersion": "v1", "metadata": metadata, "data": data, "type": "Opaque"})


def item_json(obj, metadata_only):
    return json.dumps(partial(obj) if metadata_only else obj).encode()


def padded(obj, size):
    """The JSON of `obj` with an annotation of `size` bytes added, in pieces of at most PIECE bytes."""
    marker = "\x00padding\x00"
    metadata = dict(obj.get("metadata") or {})
    metadata["annotations"] = dict(metadata.get("annotations") or {}, **{PADDING_ANNOTATION: marker})
    before, after = json.dumps(dict(obj, metadata=metadata)).split(json.dumps(marker))
    yield (before + '"').encode()
    block = b"x" * PIECE
    left = size
    while left > 0:
        yield block if left >= PIECE else block[:left]
        left -= PIECE
    yield ('"' + after).encode()


def list_json(header, items):
    """The JSON text of a list, `header` and then `items` (each an iterable of byte pieces), in pieces."""
    text = json.dumps(header)
    yield (text[:-1] + ', "items": [').encode()
    for i, pieces in enumerate(items):
        if i:
            yield b", "
        yield from pieces
    yield b"]}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, code, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def start_chunked(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def chunk(self, data):
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def reset(self):
        """Closes the connection with a TCP reset, answering nothing."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # it holds a reference to the socket: without it close() would wait for it
        self.connection.close()
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

    def route(self):
        """(group, plural, namespace, name, query) of the request's path, or None after answering 404."""
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        parts = [p for p in url.path.split("/") if p]
        # /api/v1[/namespaces/ns]/plural[/name] or /apis/group/version[/namespaces/ns]/plural[/name]
        group, version, rest = None, None, None
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        namespace = None
        if rest is not None and len(rest) in (3, 4) and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        name = rest[1] if rest is not None and len(rest) == 2 and namespace is not None else None
        plural = rest[0] if rest else None
        known = rest is not None and (len(rest) == 1 or name is not None) and (group, plural) in RESOURCES
        if known:
            api_version = RESOURCES[(group, plural)][0]
            known = api_version.split("/")[-1] == version and plural not in STATE.missing
        if not known:
            self.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))
            return None
        return group, plural, namespace, name, query, url.query

    def admitted(self, what, plural, namespace, verb, group, query_text):
        """Counts the request and answers its fault, 401 or 403, if any; True when it may go on."""
        if not self.authenticated():
            self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
            return False
        with STATE.lock:
            STATE.count(what, query_text)
            fault = STATE.next_fault()
            forbidden = plural in STATE.forbidden
        if fault is not None:
            kind, detail = fault
            if kind == "reset":
                self.reset()
                return False
            if kind == "redirect":
                self.send_json(302, status(302, "Found", "redirected"), [("Location", detail)])
                return False
            code, body_code, retry_after = detail["code"], detail["body_code"], detail["retry_after"]
            headers, details = [], None
            if retry_after is not None:
                headers, details = [("Retry-After", str(retry_after))], {"retryAfterSeconds": retry_after}
            message = "Too many requests, please try again later." if body_code == 429 else "injected failure"
            self.send_json(code, status(body_code, REASONS.get(body_code, "InternalError"), message, details), headers)
            return False
        if forbidden:
            scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
            self.send_json(403, status(403, "Forbidden",
                                       f'{plural} is forbidden: User "system:serviceaccount:test:webhook" cannot '
                                       f'{verb} resource "{plural}" in API group "{group}" {scope}'))
            return False
        return True

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith("/redirected"):
            # Where redirects point: a client that followed one is seen here.
            authorized = "Authorization" in self.headers
            with STATE.lock:
                STATE.count("redirected", url.query, authorized=authorized)
                STATE.redirected_authorized += authorized
            return self.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))
        routed = self.route()
        if routed is None:
            return
        group, plural, namespace, name, query, query_text = routed
        if name is not None:
            if not self.admitted("get " + plural, plural, namespace, "get", group, query_text):
                return
            with STATE.lock:
                obj = STATE.objects.get((plural, namespace, name))
            if obj is None:
                return self.not_found(plural, group, name)
            return self.send_json(200, obj)
        watching = query.get("watch") in ("1", "true")
        if not self.admitted(("watch " if watching else "list ") + plural, plural, namespace,
                             "watch" if watching else "list", group, query_text):
            return
        metadata_only = "as=PartialObjectMetadata" in self.headers.get("Accept", "")
        selector = query.get("labelSelector", "")
        if watching:
            return self.watch(plural, namespace, selector, metadata_only, query)
        return self.list(plural, namespace, selector, metadata_only, query)

    # WRITES: create, update, patch, delete of one object, with resourceVersion
    # preconditions as the real server checks them.

    def not_found(self, plural, group, name):
        resource = f"{plural}.{group}" if group else plural
        return self.send_json(404, status(404, "NotFound", f'{resource} "{name}" not found',
                                          {"name": name, "group": group, "kind": plural}))

    def conflict(self, plural, group, name, reason, message):
        return self.send_json(409, status(409, reason, message, {"name": name, "group": group, "kind": plural}))

    def stale(self, wanted, current, plural, group, name):
        """Answers 409 Conflict, as the real server words it, when a write's resourceVersion
        precondition is not the stored object's; True when it did."""
        if not wanted or wanted == current["metadata"]["resourceVersion"]:
            return False
        resource = f"{plural}.{group}" if group else plural
        self.conflict(plural, group, name, "Conflict",
                      f'Operation cannot be fulfilled on {resource} "{name}": the object has been modified; '
                      "please apply your changes to the latest version and try again")
        return True

    def read_body(self):
        length = int(self.headers.get("Content-Length", "0") or "0")
        return json.loads(self.rfile.read(length) or b"null")

    def write_route(self, verb, named):
        routed = self.route()
        if routed is None:
            return None
        group, plural, namespace, name, _, query_text = routed
        if namespace is None or (name is None) == named:
            self.send_json(405, status(405, "MethodNotAllowed", f"{verb} is not supported here"))
            return None
        if not self.admitted(f"{verb} {plural}", plural, namespace, verb, group, query_text):
            return None
        return group, plural, namespace, name

    def do_POST(self):
        routed = self.write_route("create", named=False)
        if routed is None:
            return
        group, plural, namespace, _ = routed
        obj = self.read_body()
        meta = obj.setdefault("metadata", {})
        if meta.get("namespace", namespace) != namespace:
            return self.send_json(400, status(400, "BadRequest", "the namespace of the object does not match the namespace of the request"))
        meta["namespace"] = namespace
        name = meta.get("name", "")
        with STATE.lock:
            if (plural, namespace, name) in STATE.objects:
                resource = f"{plural}.{group}" if group else plural
                return self.conflict(plural, group, name, "AlreadyExists", f'{resource} "{name}" already exists')
            meta.pop("resourceVersion", None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            obj["apiVersion"], obj["kind"] = RESOURCES[(group, plural)]
            STATE.put(obj)
            STATE.lock.notify_all()
        return self.send_json(201, obj)

    def do_PUT(self):
        routed = self.write_route("update", named=True)
        if routed is None:
            return
        group, plural, namespace, name = routed
        obj = self.read_body()
        meta = obj.setdefault("metadata", {})
        with STATE.lock:
            current = STATE.objects.get((plural, namespace, name))
            if current is None:
                return self.not_found(plural, group, name)
            if STATE.conflicts.get(plural, 0) > 0:
                # Another writer gets there first: the stored object moves on.
                STATE.conflicts[plural] -= 1
                STATE.put(json.loads(json.dumps(current)))
                current = STATE.objects[(plural, namespace, name)]
            wanted = meta.get("resourceVersion")
            if not wanted and plural not in UNCONDITIONAL_UPDATES:
                return self.send_json(422, status(422, "Invalid", f'{plural} "{name}" is invalid: metadata.resourceVersion: '
                                                  "Invalid value: 0x0: must be specified for an update"))
            if self.stale(wanted, current, plural, group, name):
                return
            meta.update({k: current["metadata"][k] for k in ("uid", "creationTimestamp") if k in current["metadata"]})
            meta["name"], meta["namespace"] = name, namespace
            obj["apiVersion"], obj["kind"] = RESOURCES[(group, plural)]
            STATE.put(obj)
            STATE.lock.notify_all()
        return self.send_json(200, obj)

    def do_PATCH(self):
        routed = self.write_route("patch", named=True)
        if routed is None:
            return
        group, plural, namespace, name = routed
        if self.headers.get("Content-Type", "").split(";")[0] != "application/merge-patch+json":
            return self.send_json(415, status(415, "UnsupportedMediaType", "only application/merge-patch+json is served here"))
        patch = self.read_body()
        with STATE.lock:
            current = STATE.objects.get((plural, namespace, name))
            if current is None:
                return self.not_found(plural, group, name)
            if self.stale((patch.get("metadata") or {}).get("resourceVersion"), current, plural, group, name):
                return
            obj = merge_patch(json.loads(json.dumps(current)), patch)
            STATE.put(obj)
            STATE.lock.notify_all()
        return self.send_json(200, obj)

    def do_DELETE(self):
        routed = self.write_route("delete", named=True)
        if routed is None:
            return
        group, plural, namespace, name = routed
        with STATE.lock:
            if (plural, namespace, name) not in STATE.objects:
                return self.not_found(plural, group, name)
            STATE.delete((plural, namespace, name))
            STATE.lock.notify_all()
        return self.send_json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                    "details": {"name": name, "group": group, "kind": plural}})

    # LIST

    def list(self, plural, namespace, selector, metadata_only, query):
        with STATE.lock:
            while STATE.hold_lists:
                STATE.lock.wait()
        if STATE.slow_list:
            time.sleep(STATE.slow_list)
        limit = int(query.get("limit", "0") or "0")
        token = query.get("continue")
        api_version, kind = RESOURCES[(GROUP_OF[plural], plural)]
        with STATE.lock:
            if token:
                decoded = json.loads(base64.b64decode(token))
                if STATE.continue_tokens_expire or decoded["rv"] < STATE.compacted:
                    return self.send_json(410, status(410, "Expired",
                                                      "The provided continue parameter is too old to display a consistent list result."))
                rv, offset = decoded["rv"], decoded["offset"]
            else:
                rv, offset = STATE.rv, 0
            items = STATE.selected(plural, namespace, selector)
            page = items[offset:offset + limit] if limit > 0 else items[offset:]
            next_offset = offset + len(page)
            more = limit > 0 and next_offset < len(items)
            malformed = STATE.take_malformed("list_json", "rv_type")
            oversize = STATE.take_oversize("list")
            trickle = STATE.trickle
        header = {
            "apiVersion": "meta.k8s.io/v1" if metadata_only else api_version,
            "kind": "PartialObjectMetadataList" if metadata_only else kind + "List",
            "metadata": {"resourceVersion": rv if malformed == "rv_type" else str(rv)},
        }
        if more:
            header["metadata"]["continue"] = base64.b64encode(json.dumps({"rv": rv, "offset": next_offset}).encode()).decode()
        if malformed == "list_json":
            # A whole answer, but not JSON: the items' array closed as an object.
            pieces = [next(list_json(header, [])) + b"}"]
        elif oversize is not None:
            obj = page[0] if page else {"apiVersion": api_version, "kind": kind,
                                        "metadata": {"name": "oversized", "namespace": namespace or "default",
                                                     "resourceVersion": str(rv)}}
            pieces = list_json(header, [padded(partial(obj) if metadata_only else obj, oversize["bytes"])])
        else:
            pieces = list_json(header, ((item_json(obj, metadata_only),) for obj in page))
        self.send_pieces(pieces, trickle, chunked=oversize is not None)

    def send_pieces(self, pieces, trickle=0.0, chunked=False):
        """Answers 200 with the body `pieces` make up: with a Content-Length when it is at most
        LARGE_BODY (or when trickled), else (or when `chunked`) chunked, PIECE bytes or one
        piece at a time."""
        buffered, size = [], 0
        for piece in pieces:
            buffered.append(piece)
            size += len(piece)
            if (chunked or size > LARGE_BODY) and not trickle:
                break
        else:
            body = b"".join(buffered)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            if trickle:
                return self.trickle(body)
            self.wfile.write(body)
            return
        self.start_chunked()
        pending, size = [], 0
        for piece in itertools.chain(buffered, pieces):  # those read so far, then the rest
            pending.append(piece)
            size += len(piece)
            if size >= PIECE:
                self.chunk(b"".join(pending))
                pending, size = [], 0
        if pending:
            self.chunk(b"".join(pending))
        self.chunk(b"")

    def trickle(self, body):
        """Writes `body` a byte every STATE.trickle seconds; the rest at once if that turns 0."""
        for i in range(len(body)):
            if not STATE.trickle:
                self.wfile.write(body[i:])
                return
            self.wfile.write(body[i:i + 1])
            self.wfile.flush()
            time.sleep(STATE.trickle)

    # WATCH

    def event(self, kind, obj, metadata_only):
        return (json.dumps({"type": kind, "object": partial(obj) if metadata_only else obj}) + "\n").encode()

    def wait_while_stalled(self):
        with STATE.lock:
            while STATE.stall_watches:
                STATE.lock.wait()

    def send_event(self, data):
        self.wait_while_stalled()
        self.chunk(data)

    def changes(self, plural, namespace, selector, position):
        """(type, object) for the history after `position` as this watch sees it (call with the lock held)."""
        out = []
        start = bisect.bisect_right(STATE.history, position, key=lambda entry: entry[0])
        for i in range(start, len(STATE.history)):
            rv, p, _, old, new = STATE.history[i]
            if p != plural:
                continue
            obj = new if new is not None else old
            if namespace is not None and obj["metadata"].get("namespace") != namespace:
                continue
            was = old is not None and labels_match(old, selector)
            now = new is not None and labels_match(new, selector)
            if was and now:
                out.append(("MODIFIED", new))
            elif now:
                out.append(("ADDED", new))
            elif was:
                out.append(("DELETED", dict(old, metadata=dict(old["metadata"], resourceVersion=str(rv)))))
        return out

    def injected(self, plural, namespace, selector):
        """A once-only fault meant for the next watch that this stream claims (call with the lock held)."""
        if STATE.take_malformed("event_json"):
            return ("event_json",)
        if STATE.take_oversize("endless_chunk"):
            return ("endless_chunk",)
        if STATE.oversize is not None and STATE.oversize["what"] == "event":
            existing = STATE.selected(plural, namespace, selector)
            if existing:
                return ("event", existing[0], STATE.take_oversize("event")["bytes"])
        return None

    def watch(self, plural, namespace, selector, metadata_only, query):
        since = int(query.get("resourceVersion", "0") or "0")
        timeout = float(query.get("timeoutSeconds", "1800"))
        if STATE.max_watch is not None:
            timeout = min(timeout, STATE.max_watch)
        bookmarks = query.get("allowWatchBookmarks") == "true"
        self.wait_while_stalled()
        self.start_chunked()
        with STATE.lock:
            STATE.watches.append(self.connection)
            too_old = STATE.gone or since < STATE.compacted
        try:
            if too_old:
                gone = status(410, "Expired", f"too old resource version: {since} ({max(STATE.compacted, since + 1)})")
                self.send_event((json.dumps({"type": "ERROR", "object": gone}) + "\n").encode())
                self.send_event(b"")
                return
            deadline = time.monotonic() + timeout
            last_bookmark = time.monotonic()
            position = since
            sent = 0  # events sent since watch_events_then_close applied to this stream
            while True:
                with STATE.lock:
                    while STATE.stall_watches:
                        STATE.lock.wait()
                    ended = time.monotonic() >= deadline  # what is pending still goes out first
                    budget = STATE.events_then_close
                    if budget is None:
                        sent = 0
                    changes = self.changes(plural, namespace, selector, position)
                    position = STATE.rv
                    injected = None if ended else self.injected(plural, namespace, selector)
                    if not changes and injected is None and not ended and (budget is None or sent > 0):
                        STATE.lock.wait(timeout=0.1)
                for kind, obj in changes:
                    if budget is not None and sent >= budget:
                        break
                    self.send_event(self.event(kind, obj, metadata_only))
                    sent += 1
                if injected is not None:
                    if injected[0] == "endless_chunk":
                        return self.endless_chunk()
                    self.send_injected(injected, metadata_only)
                if ended:
                    break
                room = budget is None or sent < budget
                due = time.monotonic() >= last_bookmark + STATE.bookmark_interval
                at_once = budget is not None and sent == 0  # under a budget, nothing was pending
                if bookmarks and room and (due or at_once):
                    last_bookmark = time.monotonic()
                    self.send_event(self.event("BOOKMARK", {"kind": "Bookmark", "apiVersion": "v1",
                                                            "metadata": {"resourceVersion": str(position)}}, False))
                    sent += 1
                if budget is not None and (sent >= budget or sent == 0):
                    break
            self.send_event(b"")
        except (OSError, ValueError):
            pass
        finally:
            with STATE.lock:
                if self.connection in STATE.watches:
                    STATE.watches.remove(self.connection)

    def send_injected(self, injected, metadata_only):
        if injected[0] == "event_json":
            self.send_event(b'{"type": "MODIFIED", "object": {"kind": }\n')
            return
        _, obj, size = injected
        self.wait_while_stalled()
        self.chunk(b'{"type": "MODIFIED", "object": ')
        for piece in padded(partial(obj) if metadata_only else obj, size):
            self.chunk(piece)
        self.chunk(b"}\n")

    def endless_chunk(self):
        """Announces a chunk of 0x7fffffff bytes and fills it with an unfinished JSON string
        as fast as the client reads (another such chunk when one is full), for 60 s at most;
        then drops the connection."""
        self.wait_while_stalled()
        start = b'{"type": "MODIFIED", "object": {"kind": "'
        self.wfile.write(b"7fffffff\r\n" + start)
        left = 0x7fffffff - len(start)
        spaces = b" " * PIECE
        stop = time.monotonic() + 60
        while time.monotonic() < stop:
            if left == 0:
                self.wfile.write(b"\r\n7fffffff\r\n")
                left = 0x7fffffff
            piece = spaces if left >= PIECE else spaces[:left]
            self.wfile.write(piece)
            left -= len(piece)
        self.close_connection = True


class Server(ThreadingHTTPServer):
    """HTTPS on a loopback port: TLS is set up per connection, with the certificate current then."""
    daemon_threads = True

    def __init__(self, cert, key, token_file, client_ca):
        self.token_file = token_file
        self.client_ca = client_ca
        self.use_certificate(cert, key)
        super().__init__(("127.0.0.1", 0), Handler)

    def use_certificate(self, cert, key):
        """Serves new connections with this certificate (connections made before keep theirs)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        if self.client_ca:
            context.load_verify_locations(self.client_ca)
            context.verify_mode = ssl.CERT_OPTIONAL
        self.context = context

    def get_request(self):
        connection, address = super().get_request()
        connection.settimeout(10)
        return self.context.wrap_socket(connection, server_side=True, do_handshake_on_connect=False), address

    def verify_request(self, request, client_address):
        try:
            request.do_handshake()
        except (OSError, ssl.SSLError):
            return False
        return True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (OSError, ValueError)):
            return  # the client went away, or a fault closed the connection
        super().handle_error(request, client_address)


def command(line, server):
    cmd = json.loads(line)
    op = cmd["op"]
    with STATE.lock:
        if op == "put":
            STATE.put(cmd["object"])
        elif op == "bulk_put":
            for obj in cmd["objects"]:
                STATE.put(obj)
        elif op == "bulk_secrets":
            bulk_secrets(cmd["namespace"], cmd["count"], cmd.get("prefix", "secret"), cmd.get("labelled", True),
                         cmd.get("data_bytes", 64), cmd.get("annotation_bytes", 0))
        elif op == "delete":
            STATE.delete((KIND_TO_PLURAL[cmd["kind"]], cmd["namespace"], cmd["name"]))
        elif op == "fail":
            code = cmd.get("code", 500)
            body_code = cmd.get("body_code")
            STATE.fail += [{"code": code, "retry_after": cmd.get("retry_after"),
                            "body_code": code if body_code is None else body_code}] * cmd.get("count", 1)
        elif op == "reset":
            STATE.resets = cmd.get("count", 1)
        elif op == "redirect":
            STATE.redirects, STATE.redirect_location = cmd.get("count", 1), cmd["location"]
        elif op == "forbid":
            STATE.forbidden = set(cmd.get("resources", []))
        elif op == "slow_list":
            STATE.slow_list = cmd["seconds"]
        elif op == "hold_lists":
            STATE.hold_lists = cmd.get("on", True)
        elif op == "trickle_lists":
            STATE.trickle = cmd.get("interval") or 0.0
        elif op == "malformed":
            if cmd["what"] not in ("list_json", "rv_type", "event_json"):
                raise ValueError(f"malformed what: {cmd['what']}")
            STATE.malformed.append(cmd["what"])
        elif op == "oversize":
            what = cmd.get("what")
            if what not in (None, "list", "event", "endless_chunk"):
                raise ValueError(f"oversize what: {what}")
            STATE.oversize = None if what is None else {"what": what, "bytes": cmd.get("bytes", 0)}
        elif op == "max_watch":
            STATE.max_watch = cmd["seconds"]
        elif op == "bookmark_interval":
            STATE.bookmark_interval = cmd["seconds"]
        elif op == "compact":
            # Every revision so far is compacted away; as in a real cluster, where other
            # writes keep the revision moving, the current one is newer than all of them,
            # so a LIST is served at it and a WATCH from any older one gets a 410.
            STATE.rv += 1
            STATE.compacted = STATE.rv
            STATE.history = []
        elif op == "expire_continue":
            STATE.continue_tokens_expire = cmd.get("on", True)
        elif op == "gone":
            STATE.gone = cmd.get("on", True)
        elif op == "stall_watches":
            STATE.stall_watches = cmd.get("on", True)
        elif op == "watch_events_then_close":
            STATE.events_then_close = cmd.get("count")
        elif op == "drop_watches":
            for connection in STATE.watches:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            STATE.watches = []
        elif op == "rotate_certificate":
            server.use_certificate(cmd["cert"], cmd["key"])
        elif op == "missing":
            STATE.missing = set(cmd.get("resources", []))
        elif op == "conflict":
            STATE.conflicts[cmd["resource"]] = cmd.get("count", 1)
        elif op == "get":
            obj = STATE.objects.get((cmd["resource"], cmd["namespace"], cmd["name"]))
            return json.dumps(obj)
        elif op == "objects":
            return json.dumps([obj for (plural, _, _), obj in sorted(STATE.objects.items(), key=lambda item: item[0])
                               if plural == cmd["resource"]])
        elif op == "stats":
            return json.dumps({"requests": STATE.requests, "request_log": list(STATE.request_log),
                               "redirected_authorized": STATE.redirected_authorized,
                               "open_watches": len(STATE.watches), "rv": STATE.rv})
        elif op == "clear_log":
            STATE.request_log.clear()
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

    server = Server(args.cert, args.key, args.token_file, args.client_ca)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"listening {server.server_address[1]}", flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            answer = command(line, server)
        except Exception as error:  # a bad command is the test's mistake: say so
            answer = f"error {error!r}"
        print(answer, flush=True)


if __name__ == "__main__":
    main()
