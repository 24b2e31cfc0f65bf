"""`churn serve`: a system copy as a real server on 127.0.0.1, and the pieces `churn test` uses
to check it with real clients.

The copy runs on pthreads and the real kernel (harness/real/platform_real.c and
kernel_real.c), built into out/stress/ by `./build.sh stress`. Python 3 standard library only.
"""

import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

from churn_common import (EXIT_ENV, ChurnError, TOOLS, apt_install, apt_line, binary, bugs_env,
                          can_apt, ensure_built, note, parse_bug_ids, rel, tail_text)

# system name -> its server binary in out/stress/
SERVERS = {"httpz": "httpz-serve", "btc": "btc-serve", "bun": "bun-serve"}
MAX_WORKERS = 4  # TP_MAX_THREADS in harness/httpz/httpz.h, BTC_MAX_WORKERS in btc_http.h


def cmd_serve(args):
    exe_name = SERVERS.get(args.system)
    if exe_name is None:
        raise ChurnError("unknown system %r; systems with a real server: %s"
                         % (args.system, ", ".join(sorted(SERVERS))), EXIT_ENV)
    ids = parse_bug_ids(args.bugs)
    exe = binary("stress", exe_name)
    argv = [exe, "--port", str(args.port)]
    if args.system == "bun":
        if args.workers is not None:
            raise ChurnError("--workers does not apply to bun (one thread runs the loop and JS)",
                             EXIT_ENV)
    else:
        argv += ["--workers", str(args.workers or 2)]
    if args.system == "httpz":
        argv += ["--max-conn", str(args.max_conn or 64)]
    elif args.max_conn is not None:
        raise ChurnError("--max-conn applies to httpz only (btc and bun have no connection limit)",
                         EXIT_ENV)
    if args.system == "btc":
        argv += ["--timeout", str(args.timeout or 30)]
    elif args.timeout is not None:
        raise ChurnError("--timeout applies to btc only", EXIT_ENV)
    if args.system == "bun":
        argv += ["--stop-after", str(args.stop_after)] if args.stop_after else []
    elif args.stop_after is not None:
        raise ChurnError("--stop-after applies to bun only", EXIT_ENV)
    argv += ["-v"] if args.verbose else []
    ensure_built([exe], ["stress"])
    note("running CHURN_BUGS=%s %s (stop it with Ctrl-C)"
         % (",".join(ids), " ".join([rel(exe)] + argv[1:])))
    sys.stdout.flush()
    sys.stderr.flush()
    # Python ignores these two; give the server the defaults, as subprocess does for children.
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    os.execve(exe, argv, bugs_env(ids))


def add_parser(sub, formatter):
    s = sub.add_parser("serve", formatter_class=formatter,
                       help="run a system copy as a real server on 127.0.0.1",
                       description="Build out/stress/SYSTEM-serve if needed, then run it: the "
                       "system copy on real threads and the real kernel, serving HTTP on "
                       "127.0.0.1 until Ctrl-C (SIGINT) or SIGTERM, for curl, wrk or a browser. "
                       "Every GET or POST on any path is answered 200 with a short body naming "
                       "the request (URL, method, body length and checksum). It prints "
                       "`SYSTEM-serve: listening on 127.0.0.1:PORT` once it accepts, and the "
                       "requests served when it stops. httpz is http.zig's NonBlocking worker, btc Bitcoin "
                       "Core's HTTPServer, bun Bun's server behind Bun.serve (it stops like a "
                       "script calling server.stop(), dropping the server and forcing a GC, then "
                       "exits once drained).",
                       epilog="systems: %s\nexample: ./churn serve httpz --port 8080 -v   then   "
                       "curl -v http://127.0.0.1:8080/hello\nexit status: the server's (0 after "
                       "Ctrl-C); 2 for an unknown system, a bad option or a port in use."
                       % ", ".join(sorted(SERVERS)))
    s.add_argument("system", metavar="SYSTEM", help="the copy to serve: %s"
                   % ", ".join(sorted(SERVERS)))
    s.add_argument("--port", type=_ranged(0, 65535), default=8080, metavar="N",
                   help="port on 127.0.0.1, 0 for any free one (default: 8080)")
    s.add_argument("--workers", type=_ranged(1, MAX_WORKERS), default=None, metavar="N",
                   help="httpz, btc: thread pool threads, 1..%d (default: 2)" % MAX_WORKERS)
    s.add_argument("--max-conn", type=_ranged(1, 65536), default=None, metavar="N",
                   help="httpz: connections served at once; past it the listener is paused "
                   "(default: 64)")
    s.add_argument("--timeout", type=_ranged(1, 86400), default=None, metavar="S",
                   help="btc: idle seconds before a client is disconnected (-rpcservertimeout, "
                   "default: 30)")
    s.add_argument("--stop-after", type=_ranged(1, 1000000000), default=None, metavar="N",
                   help="bun: server.stop() after N responses, then exit once drained (default: "
                   "on Ctrl-C)")
    s.add_argument("--bugs", default="", metavar="IDS",
                   help="bug toggles to turn on (CHURN_BUGS), comma-separated or 'all'; see "
                   "`churn bugs` (default: none)")
    s.add_argument("-v", "--verbose", action="store_true",
                   help="one line on stderr per connection event (accept, close, errors)")
    s.set_defaults(func=cmd_serve)


def _ranged(lo, hi):
    import argparse

    def parse(s):
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError("%r is not a whole number" % s)
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError("must be in %d..%d, got %d" % (lo, hi, v))
        return v
    return parse


# ---------------------------------------------------------------------------------------------
# what `churn test` uses to check a server


def need_clients(tools=("curl", "wrk")):
    """None when the client tools are there (installing them when root on Debian), else the
    reason with the install line."""
    missing = [t for t in tools if not TOOLS[t][0]()]
    if missing and can_apt():
        apt_install([TOOLS[t][1] for t in missing])
        missing = [t for t in missing if not TOOLS[t][0]()]
    if missing:
        return "%s not installed; install with: %s" % (
            ", ".join(missing), apt_line([TOOLS[t][1] for t in missing]))
    return None


class Server:
    """A server binary started on a free loopback port; always stopped by stop()."""

    START_TIMEOUT = 15  # seconds until the listening line
    STOP_TIMEOUT = 20  # seconds from SIGINT to exit

    def __init__(self, exe, args, env):
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([exe] + list(args), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.stderr, env=env)
        self.port = None
        self.first_line = ""

    def wait_listening(self):
        """The port from the first line, or raise RuntimeError with what was seen."""
        deadline = time.time() + self.START_TIMEOUT
        buf = b""
        fd = self.proc.stdout.fileno()
        while b"\n" not in buf and time.time() < deadline:
            r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.time()))
            if not r:
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
        self.first_line = buf.decode("utf-8", "replace").split("\n")[0]
        m = re.match(r"^\S+: listening on 127\.0\.0\.1:(\d+)$", self.first_line)
        if not m:
            raise RuntimeError("no listening line within %ds (got %r; %s)"
                               % (self.START_TIMEOUT, self.first_line, self.status_text()))
        self.port = int(m.group(1))
        self.rest = buf[buf.index(b"\n") + 1:]
        return self.port

    def status_text(self):
        rc = self.proc.poll()
        return "still running" if rc is None else _status(rc)

    def fd_count(self):
        try:
            return len(os.listdir("/proc/%d/fd" % self.proc.pid))
        except OSError:
            return None

    def settle_fds(self, want, timeout=15):
        """Wait (bounded) until the server holds want descriptors; the last count seen."""
        deadline = time.time() + timeout
        n = self.fd_count()
        while n != want and time.time() < deadline and self.proc.poll() is None:
            time.sleep(0.2)
            n = self.fd_count()
        return n

    def stop(self):
        """SIGINT, wait, then SIGKILL if needed. Returns (exit status or None, stdout, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            out, _ = self.proc.communicate(timeout=self.STOP_TIMEOUT)
            rc = self.proc.returncode
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
            rc = None
        self.stderr.seek(0)
        err = self.stderr.read().decode("utf-8", "replace")
        self.stderr.close()
        text = (getattr(self, "rest", b"") + (out or b"")).decode("utf-8", "replace")
        return rc, text, err


def _status(rc):
    return "killed" if rc is None else ("signal %d" % -rc if rc < 0 else "exit status %d" % rc)


# ---- raw HTTP over a socket, for what curl will not send ------------------------------------


class Raw:
    """One loopback connection with bounded reads of whole responses."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.time()
        if left <= 0:
            raise TimeoutError("no answer within %.0fs" % self.timeout)
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no answer within %.0fs" % self.timeout)
        if not chunk:
            raise EOFError("connection closed after %d bytes: %r" % (len(self.buf), self.buf[:200]))
        self.buf += chunk

    def response(self):
        """(status, {header: value} lower-cased, body) of the next response."""
        deadline = time.time() + self.timeout
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"^HTTP/1\.[01] (\d{3}) ", lines[0] + " ")
        if not m:
            raise ValueError("bad status line %r" % lines[0])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" not in headers:
            raise ValueError("no Content-Length in %r" % head[:300])
        n = int(headers["content-length"])
        while len(self.buf) < n:
            self._fill(deadline)
        body, self.buf = self.buf[:n], self.buf[n:]
        return int(m.group(1)), headers, body.decode("utf-8", "replace")

    def closed(self):
        """True when the server closes (EOF or reset) with nothing more sent, within timeout."""
        deadline = time.time() + self.timeout
        try:
            while not self.buf:
                self._fill(deadline)
        except EOFError:
            return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
        return False

    def close(self):
        self.sock.close()


def first_line(body):
    return body.split("\n", 1)[0].split()


def names(body, url, method):
    """The echo body's first line names the URL and the method."""
    t = first_line(body)
    return len(t) >= 2 and t[0] == url and t[1] == method


def run(cmd, timeout):
    """(exit status or None on timeout, stdout, stderr) of a client command."""
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, errors="replace",
                           timeout=timeout)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        return None, e.stdout or "", "timed out after %ds" % timeout
    except OSError as e:
        return 127, "", "cannot run %s: %s" % (cmd[0], e.strerror or e)


CURL_MARK = "\n@@ %{http_code} %{num_connects} @@\n"


def curl(urls, extra=(), timeout=20):
    """curl on one or more URLs in one invocation: (rc, [(status, connects, body)], stderr).
    A transfer's body ends where curl's -w marker line begins."""
    cmd = ["curl", "-sS", "--max-time", "10", "-w", CURL_MARK] + list(extra) + list(urls)
    rc, out, err = run(cmd, timeout)
    results, pos = [], 0
    for m in re.finditer(r"\n@@ (\d{3}) (\d+) @@\n", out):
        results.append((int(m.group(1)), int(m.group(2)), out[pos:m.start()]))
        pos = m.end()
    return rc, results, err.strip()


def wrk_summary(out):
    """The numbers wrk prints: requests, socket errors, non-2xx/3xx responses."""
    s = {"requests": None, "connect": 0, "read": 0, "write": 0, "timeout": 0, "non2xx": 0}
    m = re.search(r"^\s*(\d+) requests in ", out, re.M)
    if m:
        s["requests"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        s["connect"], s["read"], s["write"], s["timeout"] = map(int, m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        s["non2xx"] = int(m.group(1))
    return s


# ---- the sub-checks of `churn test`'s check_serve ---------------------------------------------


def sub_check(checks, name, fn):
    """One sub-check: fn() returns (passed, detail); a client error is a failure."""
    try:
        passed, detail = fn()
    except (OSError, ValueError, EOFError, TimeoutError) as e:
        passed, detail = False, "%s: %s" % (type(e).__name__, e)
    if passed:
        checks.ok(name + (" (%s)" % detail if detail else ""))
    else:
        checks.fail(name, detail)
    return passed


def http_checks(checks, P, port, url, tmp):
    """The HTTP semantics every copy's server has, each its own check named after prefix P:
    curl for what a client normally does, raw sockets for what curl will not send."""
    def get():
        rc, res, err = curl([url + "/hello?x=1"])
        ok = rc == 0 and len(res) == 1 and res[0][0] == 200 and \
            names(res[0][2], "/hello?x=1", "GET")
        return ok, "" if ok else "curl exit %s, %r %s" % (rc, res, err)
    sub_check(checks, P + " GET (curl): 200 and the echo body", get)

    def post():
        big = os.path.join(tmp, "body")
        with open(big, "wb") as f:
            f.write(bytes(i % 251 for i in range(6000)))
        lines = []
        for data in ("abc", "abd", "@" + big):
            rc, res, err = curl([url + "/post"], ["-H", "Expect:", "--data-binary", data])
            if rc != 0 or len(res) != 1 or res[0][0] != 200 or not names(res[0][2], "/post",
                                                                          "POST"):
                return False, "body %s: curl exit %s, %r %s" % (data, rc, res, err)
            lines.append(first_line(res[0][2]))
        ok = lines[0] != lines[1]
        return ok, "3 bodies up to 6000 bytes" if ok else \
            "bodies 'abc' and 'abd' got the same line %r: the body was not read" % lines[0]
    sub_check(checks, P + " POST with a body (curl)", post)

    def keepalive():
        urls = [url + "/ka/%d" % i for i in range(3)]
        rc, res, err = curl(urls)
        ok = rc == 0 and [r[0] for r in res] == [200] * 3 and [r[1] for r in res] == [1, 0, 0] \
            and all(names(r[2], "/ka/%d" % i, "GET") for i, r in enumerate(res))
        return ok, "" if ok else "curl exit %s, (status, new connections, body): %r %s" % (
            rc, res, err)
    sub_check(checks, P + " keep-alive: 3 requests on one connection (curl num_connects)",
              keepalive)

    def close():
        hdr = os.path.join(tmp, "headers")
        rc, res, err = curl([url + "/c1", url + "/c2"], ["-D", hdr, "-H", "Connection: close"])
        with open(hdr, encoding="latin-1") as f:
            heads = f.read().lower()
        if rc != 0 or [r[0] for r in res] != [200, 200] or heads.count("connection: close") != 2:
            return False, "curl exit %s, %r %s, headers:\n%s" % (rc, res, err, heads.strip())
        c = Raw(port)
        try:
            c.send(b"GET /close HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            st, h, body = c.response()
            if st != 200 or h.get("connection", "").lower() != "close" or not \
                    names(body, "/close", "GET"):
                return False, "raw: %d %r %r" % (st, h, body)
            closed = c.closed()
            return closed, "" if closed else "raw: not closed after the response"
        finally:
            c.close()
    sub_check(checks, P + " Connection: close is answered with close, then closed", close)

    def http10():
        c = Raw(port)
        try:
            c.send(b"GET /old HTTP/1.0\r\n\r\n")
            st, h, body = c.response()
            if st != 200 or h.get("connection", "").lower() != "close" or \
                    not names(body, "/old", "GET") or not c.closed():
                return False, "plain 1.0: %d %r %r, or not closed" % (st, h, body)
        finally:
            c.close()
        c = Raw(port)
        try:
            for i in range(2):
                c.send(b"GET /old-ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                st, h, body = c.response()
                if st != 200 or not names(body, "/old-ka", "GET"):
                    return False, "1.0 keep-alive request %d: %d %r %r" % (i + 1, st, h, body)
        finally:
            c.close()
        return True, ""
    sub_check(checks, P + " HTTP/1.0 closes unless keep-alive is asked", http10)

    def pipelined():
        c = Raw(port)
        try:
            c.send(b"GET /p1 HTTP/1.1\r\nHost: t\r\n\r\nPOST /p2 HTTP/1.1\r\nHost: t\r\n"
                   b"Content-Length: 3\r\n\r\nxyz")
            got = [c.response() for _ in range(2)]
        finally:
            c.close()
        ok = [g[0] for g in got] == [200, 200] and names(got[0][2], "/p1", "GET") and \
            names(got[1][2], "/p2", "POST")
        return ok, "" if ok else "responses %r" % got
    sub_check(checks, P + " two pipelined requests in one send, answered in order", pipelined)

    def bad(request, status):
        c = Raw(port)
        try:
            c.send(request)
            st, h, body = c.response()
            closed = c.closed()
        finally:
            c.close()
        ok = st == status and h.get("connection", "").lower() == "close" and closed
        return ok, "" if ok else "got %d %r %r, %s" % (st, h, body, "closed" if closed else
                                                       "not closed")
    sub_check(checks, P + " malformed request: 400, then closed",
              lambda: bad(b"THIS IS NOT HTTP\r\n\r\n", 400))
    sub_check(checks, P + " head over 2048 bytes: 431, then closed",
              lambda: bad(b"GET /h HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"a" * 3000 + b"\r\n\r\n",
                          431))
    sub_check(checks, P + " body over max_body_size: 413, then closed",
              lambda: bad(b"POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 9000\r\n\r\n" +
                          b"b" * 9000, 413))


def wrk_check(url, wrk_args):
    rc, out, err = run(["wrk"] + wrk_args + [url + "/load"], 60)
    s = wrk_summary(out)
    errors = {k: s[k] for k in ("connect", "read", "write", "timeout", "non2xx") if s[k]}
    ok = rc == 0 and s["requests"] and not errors
    if ok:
        return True, "%d requests, no socket errors, all 2xx" % s["requests"]
    return False, "wrk %s, requests %s, errors %s:\n%s" % (
        _status(rc), s["requests"], errors or "none", tail_text(out + err, 12))
