"""`churn fuzz` with no target: fuzz every system copy (every target but the self-test).

The time and the --jobs are shared among the targets: with J jobs and N targets, min(J, N)
targets run at once in waves, each wave gets an equal part of --time, and the jobs of a wave are
split among its targets (libFuzzer -fork, AFL++ secondaries). Every target prints its own
progress lines; one table at the end sums them up. Crashes are saved, recorded and replayed as
for one target; minimize them afterwards with `churn minimize` or `churn triage`.
"""

import threading
import time

from churn_common import (EXIT_ENV, EXIT_FAIL, EXIT_OK, fmt_secs, fuzzer_names, input_files,
                          note, rel, say, table, warn)
from churn_engines import _na, fuzz_target, signatures

# Targets that model no upstream system: the runtime's self-test and the bug-depth ladder (a
# yardstick for `churn bench matrix`). `churn fuzz` with no target leaves them out.
NOT_SYSTEM_COPIES = ("fuzz_sim_selftest", "fuzz_depth_ladder")


def system_targets():
    return [t for t in fuzzer_names() if t not in NOT_SYSTEM_COPIES]


def plan(targets, total_time, jobs):
    """[(wave of (target, jobs)), seconds per wave]: min(jobs, N) targets per wave."""
    width = max(1, min(jobs, len(targets)))
    waves = [targets[i:i + width] for i in range(0, len(targets), width)]
    secs = max(1, total_time // len(waves))
    out = []
    for wave in waves:
        share = [jobs // len(wave) + (1 if k < jobs % len(wave) else 0) for k in range(len(wave))]
        out.append(list(zip(wave, [max(1, s) for s in share])))
    return out, secs


def cmd_fuzz_all(args):
    targets = system_targets()
    waves, secs = plan(targets, args.time, args.jobs)
    if secs < 10:
        warn("%ds per target is short: libFuzzer needs a few seconds to load its corpus"
             % secs)
    note("fuzzing %d system copies with %s: %s; %d wave%s of %ds, %d job%s in all"
         % (len(targets), args.engine, ", ".join(targets), len(waves),
            "" if len(waves) == 1 else "s", secs, args.jobs, "" if args.jobs == 1 else "s"))
    results = {}
    t0 = time.time()
    for wave in waves:
        threads, errors = [], {}

        def run(target, jobs):
            try:
                results[target] = (fuzz_target(args, target, secs, jobs, progress="label"), jobs)
            except Exception as e:  # reported in the table; the other targets go on
                errors[target] = e

        for target, jobs in wave:
            th = threading.Thread(target=run, args=(target, jobs), daemon=True)
            th.start()
            threads.append(th)
        try:
            for th in threads:
                while th.is_alive():
                    th.join(0.5)
        except KeyboardInterrupt:
            warn("interrupted: waiting for the engines to stop")
            for th in threads:
                th.join(30)
            break
        for target, e in errors.items():
            results[target] = (e, 0)
    return report(targets, results, args, time.time() - t0)


def report(targets, results, args, elapsed):
    say("")
    say("== churn fuzz summary: %d system copies, %s, %s ==" % (len(targets), args.engine,
                                                               fmt_secs(elapsed)))
    rows, rc, all_crashes = [], EXIT_OK, []
    for t in targets:
        if t not in results:
            rows.append([t, "-", "-", "-", "-", "-", "-", "not run"])
            rc = max(rc, 130)
            continue
        r, jobs = results[t]
        if isinstance(r, Exception):
            rows.append([t, "-", "-", "-", "-", "-", "-", "error: %s" % str(r).splitlines()[0]])
            rc = EXIT_ENV if rc == EXIT_OK else rc
            continue
        res, bugs, work_corpus, crash_dir = r
        crashes = res.crashes + [p for p in res.seed_crashes if p not in res.crashes]
        status = "none"
        if crashes:
            sigs, err = signatures(t, crashes, bugs)
            names = sorted({(sigs.get(p) or "not reproducible") if not err else "?"
                            for p in crashes})
            status = "%d: %s" % (len(crashes), ", ".join(names))
            all_crashes += [(t, p) for p in crashes]
            rc = EXIT_FAIL
        elif res.error:
            status = "engine error (see %s)" % rel(res.logs[0]) if res.logs else "engine error"
            rc = EXIT_ENV if rc == EXIT_OK else rc
        cov = _na(res.cov) if args.engine == "libfuzzer" else "%s/%s" % (_na(res.cov), _na(res.ft))
        rows.append([t, str(jobs), fmt_secs(res.runtime), str(res.execs),
                     "%d" % res.exec_per_sec, str(cov), str(len(input_files(work_corpus))),
                     status])
    say(table(rows, ["target", "jobs", "time", "execs", "exec/s",
                     "cov" if args.engine == "libfuzzer" else "edges", "corpus", "crashes"]))
    say("toggles: %s" % (args.bugs or "none (CHURN_BUGS empty)"))
    for t, p in all_crashes:
        say("  %s  (churn replay --target %s%s %s)"
            % (rel(p), t, " --bugs " + args.bugs if args.bugs else "", rel(p)))
    if all_crashes:
        say("next: churn triage out/crashes/TARGET, churn minimize FILE, churn repro add FILE")
    return rc
