#!/usr/bin/env python3
"""Compile readable fuzz_epoll_shim scenarios into seed inputs.

    tools/epoll_scenario.py            write corpus/fuzz_epoll_shim/<name> for every
                                       scenarios/fuzz_epoll_shim/<name>.txt
    tools/epoll_scenario.py --check    exit 1 if a committed seed differs from a fresh compile
    tools/epoll_scenario.py FILE.txt   print the bytes of one scenario as hex

A scenario is one guest syscall per line, `T<thread> <op> <operands>`, in the byte format
of harness/epoll_shim/workload.c; `#` starts a comment. Optional lines:
    header <byte>              byte 0 of the input (default 0: direct scheduling)
    schedule <byte> <byte>...  schedule-stream bytes in the order they are read (the tool
                               stores them reversed at the end of the input)
Operands: fd numbers; flags as words (cloexec, blocking); ctl ops ADD DEL MOD BAD and events
IN OUT RDHUP ET ONESHOT; pwait timeouts 0, 5, inf; ioctl FIONBIO/FIOCLEX/FIONCLEX [arg].
"""
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(REPO, "scenarios", "fuzz_epoll_shim")
DST = os.path.join(REPO, "corpus", "fuzz_epoll_shim")

OPS = ["eventfd", "pipe", "socketpair", "open_path", "open_regular", "epoll_create1", "close",
       "dup", "dup2", "dup3", "write", "read", "ctl", "pwait", "clone", "exit", "ioctl"]
CTL_OPS = {"ADD": 0, "DEL": 1, "MOD": 2, "BAD": 3}
EVENTS = {"IN": 1, "OUT": 2, "RDHUP": 4, "ET": 8, "ONESHOT": 16}
TIMEOUTS = {"0": 0, "5": 1, "inf": 2}
IOCTLS = {"FIONBIO": 0, "FIOCLEX": 1, "FIONCLEX": 2}


def flags(words):
    f = 0
    for w in words:
        if w == "cloexec":
            f |= 1
        elif w == "blocking":
            f |= 2
        else:
            raise ValueError("unknown flag %r" % w)
    return [f]


def operands(op, args):
    n = [int(a, 0) for a in args if a.lstrip("-").isdigit()] if op in (
        "close", "dup", "dup2", "read") else None
    if op in ("eventfd", "pipe", "socketpair", "open_path", "open_regular", "epoll_create1"):
        return flags(args)
    if op in ("close", "dup", "read"):
        return [n[0]]
    if op == "dup2":
        return [n[0], n[1]]
    if op == "dup3":
        return [int(args[0]), int(args[1])] + flags(args[2:])
    if op == "write":
        return [int(args[0]), int(args[1]) if len(args) > 1 else 0]
    if op == "ctl":
        ev = 0
        for w in args[3:]:
            for part in w.split("|"):
                ev |= EVENTS[part]
        return [int(args[0]), CTL_OPS[args[1]], int(args[2]), ev]
    if op == "pwait":
        return [int(args[0]), TIMEOUTS[args[1]]]
    if op in ("clone", "exit"):
        return []
    if op == "ioctl":
        return [int(args[0]), IOCTLS[args[1]], int(args[2]) if len(args) > 2 else 0]
    raise ValueError("unknown op %r" % op)


def compile_text(text, where="<scenario>"):
    header, body, sched = 0, [], []
    for lineno, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        try:
            if words[0] == "header":
                header = int(words[1], 0)
            elif words[0] == "schedule":
                sched += [int(w, 16) for w in words[1:]]
            elif words[0].startswith("T") and words[0][1:].isdigit():
                thread, op = int(words[0][1:]), words[1]
                body.append(OPS.index(op) | (thread << 6))
                body += operands(op, words[2:])
            else:
                raise ValueError("expected T<n>, header or schedule")
        except (ValueError, IndexError, KeyError) as e:
            raise SystemExit("%s:%d: %s: %s" % (where, lineno, line.strip(), e))
    return bytes([header] + [b & 0xff for b in body] + list(reversed(sched)))


if __name__ == "__main__":
    sys.dont_write_bytecode = True  # no __pycache__ in the work tree
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import scenario_main
    scenario_main.main(__doc__, SRC, DST, compile_text)
