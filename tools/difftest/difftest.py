#!/usr/bin/env python3
"""Differential test: the library's C++ runner against CPython's weakref, scenario by scenario.

    difftest.py --runner BIN                  corpus + fixed seeds + 3 fresh seeds (printed)
    difftest.py --runner BIN --seeds N        N scenarios from fresh seeds
    difftest.py --runner BIN --seed S         replay one seed: scenario, diff (--shrink: minimise)
    difftest.py --runner BIN --scenario F     run one scenario file
    difftest.py --python-only [--seeds N]     check that runner.py accepts generated scenarios

Each scenario runs through runner.py (CPython) and BIN (weakref_difftest); the traces must be
equal line for line once map_deliberate_differences() has neutralised what differs by design.
Exit status 0 when everything matched, 1 otherwise. The language: LANGUAGE.md.
"""

import argparse
import concurrent.futures
import dataclasses
import difflib
import random
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import scenario_gen  # noqa: E402
import shrink  # noqa: E402

FIXED_SEEDS = range(1, 301)
FRESH_SEEDS = 3
TIMEOUT_SECONDS = 30
SHRINK_AT_MOST = 3  # failures shrunk per run; the others print how to replay them


# ---------------------------------------------------------------------------------------------
# Running one scenario


@dataclasses.dataclass
class Run:
    trace: list
    stderr: str
    status: int


def run_program(command, text):
    try:
        done = subprocess.run(command, input=text, capture_output=True, text=True,
                              timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        return Run([], "timeout", -1)
    return Run(done.stdout.splitlines(), done.stderr, done.returncode)


def run_cpython(text):
    return run_program([sys.executable, "-S", str(HERE / "runner.py")], text)


def python_problem(run):
    """Why runner.py's run is unusable (an invalid scenario or a runner bug), or None."""
    if run.status != 0:
        return f"runner.py exited with {run.status}:\n{run.stderr}"
    if "INTERNAL" in run.stderr or "Traceback" in run.stderr:
        return f"runner.py reported:\n{run.stderr}"
    return None


def notes(run):
    """The `deliberate <kind> <line>` notes runner.py wrote on stderr, as (kind, line) pairs."""
    found = []
    for line in run.stderr.splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == "deliberate":
            found.append((words[1], int(words[2])))
    return found


# ---------------------------------------------------------------------------------------------
# Deliberate differences: the only place where they are handled


def map_deliberate_differences(py_trace, cpp_trace, py_notes):
    """Both traces with every deliberate difference (docs/python-differences.md) neutralised.

    py_notes: (kind, line index) pairs from runner.py's stderr. Returns new lists.
    The one difference this cannot map line by line, WeakSet `&=` (CPython drops the removal
    callbacks), is kept out of generated scenarios instead: see LANGUAGE.md.
    """
    py, cpp = list(py_trace), list(cpp_trace)
    for kind, index in py_notes:
        if kind == "eq-after-death":
            # `eq r1 r2` once a referent died: CPython compares dead refs (and dead weak methods)
            # by the identity of the weak reference objects, the library by the referents'
            # identity, which stays stable after death. Only the answer differs.
            for trace in (py, cpp):
                if index < len(trace) and trace[index].startswith("eq "):
                    trace[index] = trace[index].rsplit(" ", 1)[0] + " <differs-by-design>"
        else:
            raise ValueError(f"runner.py wrote an unknown deliberate note: {kind}")
    return py, cpp


# ---------------------------------------------------------------------------------------------
# Comparing


@dataclasses.dataclass
class Outcome:
    label: str
    lines: list
    problem: str = ""  # why it failed ("" when it matched)
    diff: str = ""


def operations(lines):
    """(top-level operations, nested operations) of a scenario."""
    ops = [line.split() for line in lines if line.split() and not line.lstrip().startswith("#")]
    return len(ops), sum(tokens[:-1].count("cb") for tokens in ops)  # `cb` followed by an op


def cpp_trace(run):
    trace = list(run.trace)
    if run.status != 0:
        trace.append(f"<exit status {run.status}> {run.stderr.strip()[-500:]}")
    return trace


def compare(label, lines, runner):
    text = "\n".join(lines) + "\n"
    py = run_cpython(text)
    problem = python_problem(py)
    if problem:
        return Outcome(label, lines, problem="python-runner-error", diff=problem)
    if runner is None:  # --python-only
        return Outcome(label, lines)
    cpp = run_program([runner], text)
    mapped_py, mapped_cpp = map_deliberate_differences(py.trace, cpp_trace(cpp), notes(py))
    if mapped_py == mapped_cpp:
        return Outcome(label, lines)
    diff = difflib.unified_diff(mapped_py, mapped_cpp, "cpython (runner.py)",
                                "weakref (weakref_difftest)", lineterm="")
    return Outcome(label, lines, problem="mismatch", diff="\n".join(diff))


def still_mismatches(runner):
    def fails(lines):
        return compare("shrink", lines, runner).problem == "mismatch"

    return fails


# ---------------------------------------------------------------------------------------------
# Scenario sources


def corpus():
    return [(f"corpus/{p.name}", p.read_text().splitlines())
            for p in sorted((HERE / "corpus").glob("*.txt"))]


def seeded(seeds):
    return [(f"seed {s}", scenario_gen.generate(s)) for s in seeds]


def fresh_seeds(n):
    rng = random.SystemRandom()
    return [rng.randrange(10**9) for _ in range(n)]


# ---------------------------------------------------------------------------------------------
# Reporting


def report_failure(outcome, runner, shrink_it):
    print(f"\n==== {outcome.problem.upper()}: {outcome.label}")
    if outcome.label.startswith("seed "):
        print(f"replay: difftest.py --runner {runner} --seed {outcome.label[5:]} --shrink")
    lines = outcome.lines
    if shrink_it and outcome.problem == "mismatch":
        lines = shrink.shrink(lines, still_mismatches(runner))
        outcome = compare(outcome.label, lines, runner)
        print("shrunk scenario:")
    else:
        print("scenario:")
    print("\n".join("    " + line for line in lines))
    print(outcome.diff)


def run_all(scenarios, runner, jobs, shrink_failures=True):
    """Run every (label, lines) scenario, print failures and a summary; True if all matched."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        outcomes = list(pool.map(lambda s: compare(s[0], s[1], runner), scenarios))
    failures = [o for o in outcomes if o.problem]
    for i, outcome in enumerate(failures):
        report_failure(outcome, runner, shrink_failures and i < SHRINK_AT_MOST)
    top, nested = map(sum, zip(*(operations(o.lines) for o in outcomes))) if outcomes else (0, 0)
    mismatches = sum(o.problem == "mismatch" for o in failures)
    print(f"\ndifftest: {len(outcomes)} scenarios, {top} operations ({nested} nested in "
          f"callbacks), {mismatches} mismatches, {len(failures) - mismatches} runner.py errors")
    return not failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n")[1])
    parser.add_argument("--runner", help="the C++ runner (weakref_difftest)")
    parser.add_argument("--python-only", action="store_true",
                        help="run only runner.py (checks generated scenarios are valid)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--seeds", type=int, metavar="N", help="N scenarios from fresh seeds")
    source.add_argument("--seed", type=int, metavar="S", help="replay the scenario of seed S")
    source.add_argument("--scenario", type=Path, metavar="F", help="run one scenario file")
    parser.add_argument("--shrink", action="store_true", help="with --seed/--scenario: minimise")
    parser.add_argument("--jobs", type=int, default=2, help="parallel scenarios (default 2)")
    args = parser.parse_args()
    if not args.runner and not args.python_only:
        parser.error("--runner BIN is required (or --python-only)")
    runner = None if args.python_only else str(Path(args.runner).resolve())

    if args.seed is not None or args.scenario is not None:
        label, lines = (seeded([args.seed])[0] if args.seed is not None
                        else (str(args.scenario), args.scenario.read_text().splitlines()))
        print("\n".join(lines))
        ok = run_all([(label, lines)], runner, 1, shrink_failures=args.shrink)
    elif args.seeds is not None:
        ok = run_all(seeded(fresh_seeds(args.seeds)), runner, args.jobs)
    else:
        fresh = fresh_seeds(FRESH_SEEDS)
        print(f"fresh seeds this run: {' '.join(map(str, fresh))}")
        ok = run_all(corpus() + seeded(list(FIXED_SEEDS) + fresh), runner, args.jobs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
