#!/usr/bin/env python3
"""Compile readable scenarios of the HTTP server targets into seed inputs.

    tools/http_scenario.py [--target T]            write corpus/T/<name> for every
                                                   scenarios/T/<name>.txt
    tools/http_scenario.py [--target T] --check    exit 1 if a committed seed differs from a
                                                   fresh compile
    tools/http_scenario.py [--target T] FILE.txt   print the bytes of one scenario as hex
T is fuzz_httpz_worker (the default), fuzz_btc_httpserver or fuzz_bun_server.

A scenario describes the server (and for fuzz_httpz_worker the app's forks) and the churn
clients in the byte format of fuzzers/T.c; `#` starts a comment. Lines, in this order:
    header <byte>                  byte 0 of the input (default 0: direct scheduling)
    server ...                     fuzz_httpz_worker: [max_conn=N] [pool=N] [prealloc=N]
                                   [max_requests=100|2|3|5] [faults];
                                   fuzz_btc_httpserver: [workers=1|2]
                                   [sockbuf=65536|8192|2048|512] [faults] [timeout=1|2];
                                   fuzz_bun_server: [handler=sync|async|either] [routes]
                                   [bake] [faults] [idle=2|10]
    fork before=N held=N           fuzz_httpz_worker only, up to 3: yields before the fork,
                                   yields before the exec (held is even, at most 30)
    step ACTION [after=N] [yields=N]
                                   fuzz_bun_server only, up to 3, in order: the script's
                                   steps, ACTION one of stop, stop-abrupt, drop (server = null),
                                   gc; posted once N responses (0-7) were written, after N
                                   yields (0-7)
    clients [resets]               optional: resets on
    client                         starts a client; its connections follow, made in order
    conn [end=close|half-close|stall|linger]
    req METHOD PATH [http10] [close] [pipelined] [split]
                                   METHOD: GET, POST, POST-chunked, BAD; PATH: echo, big,
                                   handoff, or for BAD: syntax, head-too-big, body-too-big,
                                   bad-chunk
    schedule <byte> <byte>...      schedule-stream bytes in the order they are read (stored
                                   reversed at the end of the input)
"""
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = ("fuzz_httpz_worker", "fuzz_btc_httpserver", "fuzz_bun_server")
SOCKBUFS = {"65536": 0, "8192": 1, "2048": 2, "512": 3}

MAX_REQUESTS = {"100": 0, "2": 1, "3": 2, "5": 3}
ENDS = {"close": 0, "half-close": 1, "stall": 2, "linger": 3}
METHODS = {"GET": 0, "POST": 1, "POST-chunked": 2, "BAD": 3}
PATHS = {"echo": 0, "big": 2, "handoff": 3}
BAD = {"syntax": 0, "head-too-big": 1, "body-too-big": 2, "bad-chunk": 3}
REQ_FLAGS = {"http10": 0x10, "close": 0x20, "pipelined": 0x40, "split": 0x80}


def kv(words, allowed):
    out = {}
    for w in words:
        k, sep, v = w.partition("=")
        if k not in allowed:
            raise ValueError("unknown setting %r (expected %s)" % (w, ", ".join(allowed)))
        out[k] = v if sep else True
    return out


def ranged(v, lo, hi, what):
    n = int(v, 0)
    if not lo <= n <= hi:
        raise ValueError("%s must be %d..%d, got %d" % (what, lo, hi, n))
    return n


def httpz_server(args):
    s = kv(args, ["max_conn", "pool", "prealloc", "max_requests", "faults"])
    return (ranged(s.get("max_conn", "1"), 1, 4, "max_conn") - 1) \
        | (ranged(s.get("pool", "1"), 1, 2, "pool") - 1) << 2 \
        | (ranged(s.get("prealloc", "1"), 1, 2, "prealloc") - 1) << 3 \
        | MAX_REQUESTS[s.get("max_requests", "100")] << 4 \
        | (0x40 if s.get("faults") else 0)


def btc_server(args):
    s = kv(args, ["workers", "sockbuf", "faults", "timeout"])
    return (ranged(s.get("workers", "1"), 1, 2, "workers") - 1) \
        | SOCKBUFS[s.get("sockbuf", "65536")] << 1 \
        | (0x08 if s.get("faults") else 0) \
        | (ranged(s.get("timeout", "1"), 1, 2, "timeout") - 1) << 4


HANDLERS = {"sync": 0, "async": 1, "either": 2}
STEPS = {"stop": 0, "stop-abrupt": 1, "drop": 2, "gc": 3}


def bun_server(args):
    s = kv(args, ["handler", "routes", "bake", "faults", "idle"])
    idle = s.get("idle", "2")
    if idle not in ("2", "10"):
        raise ValueError("idle must be 2 or 10")
    return HANDLERS[s.get("handler", "sync")] \
        | (0x04 if s.get("routes") else 0) \
        | (0x08 if s.get("bake") else 0) \
        | (0x10 if s.get("faults") else 0) \
        | (0x20 if idle == "10" else 0)


def bun_step(args):
    if not args or args[0] not in STEPS:
        raise ValueError("a step is one of %s" % ", ".join(STEPS))
    s = kv(args[1:], ["after", "yields"])
    return STEPS[args[0]] | ranged(s.get("after", "0"), 0, 7, "after") << 2 \
        | ranged(s.get("yields", "0"), 0, 7, "yields") << 5


SERVERS = {"fuzz_httpz_worker": httpz_server, "fuzz_btc_httpserver": btc_server,
           "fuzz_bun_server": bun_server}


def compile_text(text, where="<scenario>", target="fuzz_httpz_worker"):
    btc = target == "fuzz_btc_httpserver"
    bun = target == "fuzz_bun_server"
    header, server, forks, steps, resets, clients, sched = 0, 0, [], [], False, [], []
    for lineno, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        try:
            op, args = words[0], words[1:]
            if op == "header":
                header = int(args[0], 0)
            elif op == "server":
                server = SERVERS[target](args)
            elif op == "step" and bun:
                if len(steps) == 3:
                    raise ValueError("at most 3 steps")
                steps.append(bun_step(args))
            elif op == "fork" and not btc and not bun:
                f = kv(args, ["before", "held"])
                held = ranged(f.get("held", "0"), 0, 30, "held")
                if held % 2:
                    raise ValueError("held must be even")
                if len(forks) == 3:
                    raise ValueError("at most 3 forks")
                forks.append(ranged(f.get("before", "0"), 0, 15, "before") | (held // 2) << 4)
            elif op == "clients":
                resets = kv(args, ["resets"]).get("resets", False)
            elif op == "client":
                if len(clients) == 4:
                    raise ValueError("at most 4 clients")
                clients.append([])
            elif op == "conn":
                if not clients or len(clients[-1]) == 4:
                    raise ValueError("a conn belongs to a client, at most 4 each")
                clients[-1].append([ENDS[kv(args, ["end"]).get("end", "close")] << 2])
            elif op == "req":
                if not clients or not clients[-1] or len(clients[-1][-1]) == 5:
                    raise ValueError("a req belongs to a conn, at most 4 each")
                method = METHODS[args[0]]
                path = (BAD if method == 3 else PATHS)[args[1]]
                flags = 0
                for w in args[2:]:
                    flags |= REQ_FLAGS[w]
                clients[-1][-1].append(method | path << 2 | flags)
            elif op == "schedule":
                sched += [int(w, 16) for w in args]
            else:
                raise ValueError("unknown line")
        except (ValueError, IndexError, KeyError) as e:
            raise SystemExit("%s:%d: %s: %s" % (where, lineno, line.strip(), e))
    if not clients:
        raise SystemExit("%s: no client" % where)
    if btc:
        body = [server]
    elif bun:
        body = [server, len(steps)] + steps
    else:
        body = [server, len(forks)] + forks
    body.append((len(clients) - 1) | (0x4 if resets else 0))
    for conns in clients:
        if not conns:
            raise SystemExit("%s: a client without a conn" % where)
        body.append(len(conns) - 1)
    for conns in clients:
        for conn in conns:
            if len(conn) == 1:
                raise SystemExit("%s: a conn without a req" % where)
            conn[0] |= len(conn) - 2
            body += conn
    return bytes([header] + body + list(reversed(sched)))


if __name__ == "__main__":
    sys.dont_write_bytecode = True  # no __pycache__ in the work tree
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import scenario_main
    argv = sys.argv[:]
    target = TARGETS[0]
    if "--target" in argv[1:]:
        i = argv.index("--target")
        if i + 1 >= len(argv) or argv[i + 1] not in TARGETS:
            raise SystemExit("http_scenario.py: --target takes one of %s" % ", ".join(TARGETS))
        target = argv[i + 1]
        del argv[i:i + 2]
    sys.argv = argv
    scenario_main.main(__doc__, os.path.join(REPO, "scenarios", target),
                       os.path.join(REPO, "corpus", target),
                       lambda text, where: compile_text(text, where, target))
