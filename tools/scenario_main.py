"""The command line shared by the scenario compilers (tools/*_scenario.py): compile every
scenarios/<target>/<name>.txt into corpus/<target>/<name>, check that the committed seeds are
what they compile to, or print one scenario's bytes."""
import os
import sys


def run(argv, doc, src, dst, compile_text):
    if len(argv) > 1 and argv[1] in ("-h", "--help"):
        print(doc.strip())
        return 0
    if len(argv) > 1 and argv[1] != "--check":
        with open(argv[1]) as f:
            print(compile_text(f.read(), argv[1]).hex(" "))
        return 0
    check = len(argv) > 1
    bad = 0
    os.makedirs(dst, exist_ok=True)
    for name in sorted(os.listdir(src)):
        if not name.endswith(".txt"):
            continue
        path = os.path.join(src, name)
        with open(path) as f:
            data = compile_text(f.read(), path)
        out = os.path.join(dst, name[:-4])
        if check:
            old = open(out, "rb").read() if os.path.exists(out) else None
            if old != data:
                print("%s: differs from a fresh compile of %s" % (out, path))
                bad += 1
        else:
            with open(out, "wb") as f:
                f.write(data)
    return 1 if bad else 0


def main(doc, src, dst, compile_text):
    sys.dont_write_bytecode = True
    sys.exit(run(sys.argv, doc, src, dst, compile_text))
