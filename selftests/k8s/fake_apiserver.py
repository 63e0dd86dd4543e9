#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""A fake Kubernetes API server for the kaccess selftests (test-only).

Serves PodList/ServiceList JSON (paged with limit/continue) and chunked watch
streams (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR 410) for /api/v1/pods and
/api/v1/services, like the real one. Test controls are POSTs to /_control/<verb>
with a JSON body:

  add_pod {object}            add or replace (by uid) a pod: ADDED/MODIFIED
  delete_pod {uid}            DELETED
  add_service {object}        add or replace (by namespace/name): ADDED/MODIFIED
  delete_service {namespace, name}
  close_watches {}            end every open watch cleanly
  watch_error_410 {}          send ERROR 410 on every open watch and forget
                              the event history (old resourceVersions are gone)
  compact {}                  forget the event history up to now, telling no
                              open watch (etcd compaction): a later watch from
                              an older resourceVersion gets ERROR 410
  http_410 {count}            the next `count` watch requests get HTTP 410
  garbage {count}             the next `count` API responses are not JSON
  hang {count}                the next `count` watch requests send headers, then
                              nothing at all (a dead connection)
  bulk {pods, services, namespaces}  synthetic objects, for scale tests
  replay {file}               apply a recorded watch stream (ndjson) event by event

A list response of GZIP_MIN_BYTES or more is gzipped when the request
accepts gzip, as the real server does (gzip_lists counts them).

GET /_control/stats returns request counters, and per resource the
resourceVersion of the last watch request (watch_rv_pods, watch_rv_services)
and of the last BOOKMARK sent (bookmark_rv_pods, bookmark_rv_services). Being
down at start is the test's part: it starts this server late.

usage: fake_apiserver.py --port N [--fixtures DIR] [--bookmark-s S]
       [--tls-cert PEM --tls-key PEM [--client-ca PEM]] [--require-token TOKEN]

With TLS, the stats say the client certificate's CN (client_cn); they always
say the last Authorization header (last_auth). --require-token answers 401 to
any other bearer token.
"""
import argparse
import copy
import gzip
import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

RESOURCES = {"/api/v1/pods": "Pod", "/api/v1/services": "Service"}
STAT_SUFFIX = {"Pod": "pods", "Service": "services"}
HISTORY_MAX = 200000
# kube-apiserver gzips a response of 128 KiB or more (when the client accepts it)
GZIP_MIN_BYTES = 128 << 10


class State:
    def __init__(self):
        self.lock = threading.Condition()
        self.rv = 1000
        self.objects = {"Pod": {}, "Service": {}}
        # (rv, kind, type, object): what a watch from an older rv replays
        self.history = []
        self.history_floor = self.rv  # watches from an rv below this get 410
        self.watch_generation = 0     # bumped to end open watches
        self.error_generation = 0     # bumped to send ERROR 410 on open watches
        self.http_410 = 0
        self.garbage = 0
        self.hang = 0
        self.stats = {"list": 0, "gzip_lists": 0, "watch": 0, "http_410": 0, "garbage": 0,
                      "hang": 0,
                      "open_watches": 0, "control": 0, "unauthorized": 0,
                      "last_auth": "", "client_cn": "",
                      "watch_rv_pods": 0, "watch_rv_services": 0,
                      "bookmark_rv_pods": 0, "bookmark_rv_services": 0}

    @staticmethod
    def key(kind, obj):
        meta = obj.get("metadata", {})
        if kind == "Pod":
            return meta.get("uid")
        return "%s/%s" % (meta.get("namespace"), meta.get("name"))

    def record(self, kind, event_type, obj):
        """Caller holds the lock."""
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["kind"] = kind
        obj["apiVersion"] = "v1"
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
        key = self.key(kind, obj)
        if event_type == "DELETED":
            self.objects[kind].pop(key, None)
        else:
            self.objects[kind][key] = obj
        self.history.append((self.rv, kind, event_type, obj))
        if len(self.history) > HISTORY_MAX:
            dropped = self.history[: len(self.history) - HISTORY_MAX]
            self.history = self.history[len(dropped):]
            self.history_floor = dropped[-1][0]
        self.lock.notify_all()

    def upsert(self, kind, obj):
        with self.lock:
            exists = self.key(kind, obj) in self.objects[kind]
            self.record(kind, "MODIFIED" if exists else "ADDED", obj)

    def delete(self, kind, key):
        with self.lock:
            obj = self.objects[kind].get(key)
            if obj is None:
                return False
            self.record(kind, "DELETED", obj)
            return True

    def load_list(self, path):
        with open(path) as f:
            data = json.load(f)
        kind = data["kind"][: -len("List")]
        with self.lock:
            for item in data["items"]:
                self.record(kind, "ADDED", item)
            self.history_floor = self.rv
            self.history = []


def synthetic_pod(i, namespaces, services):
    ns = "bulk-%d" % (i % namespaces)
    app = "svc-%d" % (i % services)
    return {
        "metadata": {"name": "%s-7d4b9c8f6d-%05d" % (app, i), "namespace": ns,
                     "uid": "%08x-0000-4000-8000-%012x" % (0xb0000000 + i, i),
                     "labels": {"app": app, "pod-template-hash": "7d4b9c8f6d",
                                "app.kubernetes.io/part-of": "bulk", "tier": "backend"}},
        "spec": {"nodeName": "node-%d" % (i % 50), "containers": [{"name": "main"}]},
        "status": {"phase": "Running", "podIP": "10.%d.%d.%d" % (100 + i // 65536, (i // 256) % 256, i % 256),
                   "podIPs": [{"ip": "10.%d.%d.%d" % (100 + i // 65536, (i // 256) % 256, i % 256)}],
                   "hostIP": "192.168.%d.%d" % ((i % 50) // 250, (i % 50) + 1),
                   "containerStatuses": [{"name": "main", "ready": True,
                                          "containerID": "containerd://%064x" % (0xc0ffee0000 + i)}]},
    }


def synthetic_service(i, namespaces, services):
    # service i selects the pods with app=svc-i; pods of svc-i live in
    # namespace (j % namespaces) for j = i, i+services, ...: put the service in
    # the namespace of pod i.
    ns = "bulk-%d" % (i % namespaces)
    return {
        "metadata": {"name": "svc-%d" % i, "namespace": ns},
        "spec": {"selector": {"app": "svc-%d" % i}, "type": "ClusterIP",
                 "clusterIP": "10.%d.%d.%d" % (200 + i // 65536, (i // 256) % 256, i % 256),
                 "clusterIPs": ["10.%d.%d.%d" % (200 + i // 65536, (i // 256) % 256, i % 256)],
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None
    bookmark_s = 1.0
    require_token = None

    def log_message(self, fmt, *args):
        pass

    def send_json(self, code, obj, may_compress=False):
        body = json.dumps(obj).encode()
        gzipped = may_compress and len(body) >= GZIP_MIN_BYTES and \
            "gzip" in self.headers.get("Accept-Encoding", "")
        if gzipped:
            body = gzip.compress(body)
            with self.state.lock:
                self.state.stats["gzip_lists"] += 1
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_status(self, code, reason, message):
        self.send_json(code, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                              "status": "Failure", "message": message, "reason": reason,
                              "code": code})

    def take(self, name):
        st = self.state
        with st.lock:
            if getattr(st, name) > 0:
                setattr(st, name, getattr(st, name) - 1)
                st.stats[name] += 1
                return True
        return False

    def do_GET(self):
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/_control/stats":
            with self.state.lock:
                stats = dict(self.state.stats)
                stats["rv"] = self.state.rv
                stats["pods"] = len(self.state.objects["Pod"])
                stats["services"] = len(self.state.objects["Service"])
            return self.send_json(200, stats)
        auth = self.headers.get("Authorization", "")
        with self.state.lock:
            self.state.stats["last_auth"] = auth
            peer_cert = self.connection.getpeercert() if hasattr(self.connection, "getpeercert") else None
            if peer_cert:
                for rdn in peer_cert.get("subject", ()):
                    for key, value in rdn:
                        if key == "commonName":
                            self.state.stats["client_cn"] = value
        if self.require_token is not None and auth != "Bearer " + self.require_token:
            with self.state.lock:
                self.state.stats["unauthorized"] += 1
            return self.send_status(401, "Unauthorized", "Unauthorized")
        kind = RESOURCES.get(url.path)
        if kind is None:
            return self.send_status(404, "NotFound", "no such path " + url.path)
        if self.take("garbage"):
            body = b"<html>this is not the API server you are looking for{\n"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if query.get("watch") in ("1", "true"):
            return self.watch(kind, query)
        return self.list(kind, query)

    def list(self, kind, query):
        st = self.state
        limit = int(query.get("limit", "0") or 0)
        offset = 0
        with st.lock:
            st.stats["list"] += 1
            if query.get("continue"):
                offset = int(query["continue"].split(":")[1])
            keys = sorted(st.objects[kind])
            end = len(keys) if limit <= 0 else min(len(keys), offset + limit)
            items = [st.objects[kind][k] for k in keys[offset:end]]
            metadata = {"resourceVersion": str(st.rv)}
            if end < len(keys):
                metadata["continue"] = "%d:%d" % (st.rv, end)
                metadata["remainingItemCount"] = len(keys) - end
            body = {"kind": kind + "List", "apiVersion": "v1", "metadata": metadata,
                    "items": items}
        self.send_json(200, body, may_compress=True)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def event(self, event_type, obj):
        self.chunk(json.dumps({"type": event_type, "object": obj}).encode() + b"\n")

    def watch(self, kind, query):
        st = self.state
        if self.take("http_410"):
            return self.send_status(410, "Expired", "too old resource version")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.take("hang"):
            time.sleep(600)
            return
        timeout_s = float(query.get("timeoutSeconds", "1800"))
        deadline = time.monotonic() + timeout_s
        rv_text = query.get("resourceVersion", "")
        with st.lock:
            st.stats["watch"] += 1
            st.stats["open_watches"] += 1
            st.stats["watch_rv_" + STAT_SUFFIX[kind]] = int(rv_text or 0)
            generation = st.watch_generation
            error_generation = st.error_generation
            if rv_text in ("", "0"):
                pending = [(st.rv, "ADDED", o) for o in st.objects[kind].values()]
                since = st.rv
            else:
                since = int(rv_text)
                if since < st.history_floor:
                    pending = None
                else:
                    pending = [(r, t, o) for (r, k, t, o) in st.history if k == kind and r > since]
                    if pending:
                        since = pending[-1][0]
        try:
            if pending is None:
                self.event("ERROR", {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                     "status": "Failure", "reason": "Expired", "code": 410,
                                     "message": "too old resource version: %s (%d)"
                                     % (rv_text, st.history_floor)})
                return self.chunk(b"")
            for _, event_type, obj in pending:
                self.event(event_type, obj)
            self.stream(kind, since, generation, error_generation, deadline)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with st.lock:
                st.stats["open_watches"] -= 1

    def stream(self, kind, since, generation, error_generation, deadline):
        st = self.state
        next_bookmark = time.monotonic() + self.bookmark_s
        while True:
            with st.lock:
                now = time.monotonic()
                if now >= deadline or st.watch_generation != generation:
                    break
                if st.error_generation != error_generation:
                    error = True
                else:
                    error = False
                    st.lock.wait(min(deadline, next_bookmark) - now)
                new = [(r, t, o) for (r, k, t, o) in st.history if k == kind and r > since]
                if new:
                    since = new[-1][0]
                current_rv = st.rv
            if error:
                self.event("ERROR", {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                     "status": "Failure", "reason": "Expired", "code": 410,
                                     "message": "too old resource version"})
                break
            for _, event_type, obj in new:
                self.event(event_type, obj)
            if time.monotonic() >= next_bookmark:
                self.event("BOOKMARK", {"kind": kind, "apiVersion": "v1",
                                        "metadata": {"resourceVersion": str(current_rv)}})
                with st.lock:
                    st.stats["bookmark_rv_" + STAT_SUFFIX[kind]] = current_rv
                next_bookmark = time.monotonic() + self.bookmark_s
        self.chunk(b"")

    def do_POST(self):
        st = self.state
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        verb = urlparse(self.path).path.rsplit("/", 1)[-1]
        with st.lock:
            st.stats["control"] += 1
        if verb == "add_pod":
            st.upsert("Pod", body)
        elif verb == "delete_pod":
            st.delete("Pod", body["uid"])
        elif verb == "add_service":
            st.upsert("Service", body)
        elif verb == "delete_service":
            st.delete("Service", "%s/%s" % (body["namespace"], body["name"]))
        elif verb == "close_watches":
            with st.lock:
                st.watch_generation += 1
                st.lock.notify_all()
        elif verb == "watch_error_410":
            with st.lock:
                st.error_generation += 1
                st.history = []
                st.history_floor = st.rv
                st.lock.notify_all()
        elif verb == "compact":
            with st.lock:
                st.history = []
                st.history_floor = st.rv
        elif verb in ("http_410", "garbage", "hang"):
            with st.lock:
                setattr(st, verb, int(body.get("count", 1)))
        elif verb == "replay":
            # a recorded watch stream (e.g. fixtures/pod-watch.ndjson), applied
            # event by event; its ERROR 410 expires the history like watch_error_410
            with open(body["file"]) as f:
                for line in f:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    obj, kind = event["object"], event["object"].get("kind", "Pod")
                    if event["type"] in ("ADDED", "MODIFIED"):
                        st.upsert(kind, obj)
                    elif event["type"] == "DELETED":
                        st.delete(kind, st.key(kind, obj))
                    elif event["type"] == "ERROR":
                        with st.lock:
                            st.error_generation += 1
                            st.history = []
                            st.history_floor = st.rv
                            st.lock.notify_all()
        elif verb == "bulk":
            namespaces = int(body.get("namespaces", 100))
            services = int(body.get("services", 0))
            with st.lock:
                for i in range(int(body.get("pods", 0))):
                    st.record("Pod", "ADDED", synthetic_pod(i, namespaces, services or 1))
                for i in range(services):
                    st.record("Service", "ADDED", synthetic_service(i, namespaces, services))
        else:
            return self.send_status(404, "NotFound", "no control " + verb)
        with st.lock:
            rv = st.rv
        self.send_json(200, {"resourceVersion": str(rv)})


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # clients hang up mid-stream on purpose (timeouts, aborts): not news
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fixtures", help="directory with pods.json and services.json")
    parser.add_argument("--bookmark-s", type=float, default=1.0)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--client-ca")
    parser.add_argument("--require-token")
    args = parser.parse_args()
    state = State()
    if args.fixtures:
        state.load_list(args.fixtures + "/pods.json")
        state.load_list(args.fixtures + "/services.json")
    Handler.state = state
    Handler.bookmark_s = args.bookmark_s
    Handler.require_token = args.require_token
    server = Server(("127.0.0.1", args.port), Handler)
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        if args.client_ca:
            context.load_verify_locations(args.client_ca)
            context.verify_mode = ssl.CERT_OPTIONAL
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print("READY %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
