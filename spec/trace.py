#!/usr/bin/env python3
"""Trace validation: replays traces of aquifer's core against the TLA+ spec.

A trace is what the core committed, step by step:

    {"name": "...", "expect": "valid" | "invalid",
     "rules":  {"acquisition": "ordered", "grant": "together", "pools": "per_type"},  (optional)
     "limits": {"group_failures_max": 3, "destroy_failures_max": 5},                  (optional)
     "steps": [{"now": 0, "input": {...}, "events": [...]}, ...]}

Events and inputs are the serde JSON of core/src/event.rs and input.rs.  A
`*.json` file holds one trace, a `*.jsonl` file one trace per line.

This script folds the events into the abstract state of Aquifer.tla (the
refinement mapping: it decides nothing, it only records what the core
said), cuts each step into the spec actions it stands for, and writes the
result as a TLA+ module (TLC here has no JSON reader).  AquiferTrace.tla
then asks TLC whether, from each state, some action of the spec leads to
exactly the next one.  A trace is accepted when TLC can follow it to its end.

    trace.py validate --jar JAR [--dir OUT] [--keep] PATH...   convert, run TLC, report
    trace.py convert --out DIR PATH...                          only write the modules

`validate` prints one line per rejected (or unexpectedly accepted) trace and
a summary, and exits 0 only when every trace met its expectation.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = 64          # traces per TLC run
BATCH_ALONE = set() # traces to run alone, after a run that failed as a whole
FAULTS = 1000000    # the spec's fault budget is not a limit of the core

REGISTRATION = {"type_defined", "target_defined", "well_registered", "factory_registered"}
# Events that begin a spec action of their own when a Tick makes several
# things due at once (the core handles them one after the other).
DUE = {"lease_ended": lambda e: e.get("cause") == "expired",
       "job_ended": lambda e: e.get("outcome") == "timed_out",
       "worker_lease_expired": lambda e: True}

DEFAULT_LIMITS = {"group_failures_max": 3, "destroy_failures_max": 5}


class Reject(Exception):
    """The trace cannot even be folded: it is not a behaviour of the core."""


# ---------------------------------------------------------------- TLA+ values

class Interner:
    """Names each sizeable value once, so that the states of a trace, which
    differ from one step to the next in a field or two, share the rest:
    the generated module stays small and SANY parses it quickly."""

    def __init__(self):
        self.names, self.defs = {}, []

    def __call__(self, text):
        if len(text) < 24:
            return text
        name = self.names.get(text)
        if name is None:
            name = self.names[text] = "V%d" % (len(self.defs) + 1)
            self.defs.append("%s == %s" % (name, text))
        return name


def tla(v, share=lambda text: text):
    t = lambda x: tla(x, share)
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, Seq):
        return share("<<" + ", ".join(t(x) for x in v.items) + ">>")
    if isinstance(v, Set):
        return share("{" + ", ".join(t(x) for x in sorted(v.items, key=repr)) + "}")
    if isinstance(v, Fn):
        if not v.items:
            return "E"
        return share("(" + " @@ ".join("%s :> %s" % (t(k), t(x)) for k, x in sorted(v.items.items())) + ")")
    if isinstance(v, dict):  # a record
        return share("[" + ", ".join("%s |-> %s" % (k, t(x)) for k, x in v.items()) + "]")
    raise TypeError(repr(v))


class Seq:
    def __init__(self, items):
        self.items = list(items)


class Set:
    def __init__(self, items):
        self.items = list(items)


class Fn:
    def __init__(self, items):
        self.items = dict(items)


# ---------------------------------------------------------------- outcomes

def outcome_of(o):
    if isinstance(o, str) and o in ("succeeded", "cancelled", "timed_out"):
        return o
    if isinstance(o, dict) and set(o) == {"failed"} and o["failed"] in (
            "tasks", "resource", "worker_lost", "dependency"):
        return "failed_" + o["failed"]
    raise Reject("unknown outcome %r" % (o,))


# ---------------------------------------------------------------- the scope

def scope_of(trace):
    """The registry and the jobs: constants of the spec for this trace."""
    types, targets, wells, factories, jobs = {}, set(), {}, {}, {}
    rules = trace.get("rules") or {}
    policy = rules.get("acquisition", "ordered")
    grant = {"together": "together", "one_by_one": "onebyone"}.get(rules.get("grant", "together"))
    sharing = rules.get("pools", "per_type")
    if policy not in ("ordered", "parallel") or grant is None or sharing not in ("per_type", "shared"):
        raise Reject("unknown rules %r" % (rules,))
    limits = dict(DEFAULT_LIMITS)
    limits.update({k: v for k, v in (trace.get("limits") or {}).items() if k in DEFAULT_LIMITS})
    submitted = False
    for n, step in enumerate(trace["steps"], 1):
        inp = step.get("input") or {}
        for e in step.get("events", []):
            kind = e.get("event")
            if kind in REGISTRATION and submitted:
                raise Reject("step %d: %s after the first submission (the spec's registry is fixed)" % (n, kind))
            if kind == "type_defined":
                types[e["rtype"]] = e["spec"]["max_per_job"]
            elif kind == "target_defined":
                targets.add(e["target"])
            elif kind == "well_registered":
                pools = [(tuple(sorted(p["types"])), p["capacity"]) for p in e["pools"]]
                for ts, _ in pools:
                    if len(ts) > 1 and sharing == "per_type":
                        raise Reject("step %d: well %s has a pool of several types under per_type rules" % (n, e["well"]))
                    if not set(ts) <= set(types):
                        raise Reject("step %d: well %s serves an undefined type" % (n, e["well"]))
                served = [t for ts, _ in pools for t in ts]
                if len(served) != len(set(served)):
                    raise Reject("step %d: well %s serves a type from two pools" % (n, e["well"]))
                wells[e["well"]] = pools
            elif kind == "factory_registered":
                if not set(e["capacity"]) <= targets or min(e["capacity"].values(), default=0) < 1:
                    raise Reject("step %d: factory %s has a bad capacity" % (n, e["factory"]))
                factories[e["factory"]] = dict(e["capacity"])
            elif kind == "job_submitted":
                submitted = True
                j = e["job"]
                groups = [(t, c) for t, c in e["groups"]]
                names = [t for t, _ in groups]
                if names != sorted(set(names)):
                    raise Reject("step %d: job %d's groups are not by type in rank order" % (n, j))
                if not set(names) <= set(types) or e["target"] not in targets:
                    raise Reject("step %d: job %d asks for an undefined type or target" % (n, j))
                if any(c < 1 or c > types[t] for t, c in groups):
                    raise Reject("step %d: job %d's group exceeds its type's max_per_job" % (n, j))
                deps = e.get("depends_on", [])
                run_on = e.get("run_on", {})
                awaits = bool(e.get("awaits_inputs", False))
                if inp.get("input") == "submit_job":
                    deps = inp.get("depends_on", deps)
                    run_on = inp.get("run_on", run_on)
                    awaits = bool(inp.get("awaits_inputs", awaits))
                on = {int(d): c for d, c in run_on.items()}
                if not set(on) <= set(deps) or not set(on.values()) <= {"success", "failure", "either"}:
                    raise Reject("step %d: job %d's run_on %r" % (n, j, run_on))
                jobs[j] = {"groups": groups, "target": e["target"], "deps": sorted(deps),
                           "failure": sorted(d for d, c in on.items() if c == "failure"),
                           "either": sorted(d for d, c in on.items() if c == "either"),
                           "awaits": awaits}
    if sorted(jobs) != list(range(1, len(jobs) + 1)):
        raise Reject("job ids are not 1..%d in submission order" % len(jobs))
    for j, job in jobs.items():
        if any(d >= j or d < 1 for d in job["deps"]):
            raise Reject("job %d depends on a job not submitted before it" % j)
    order = sorted(types)
    return {
        "jobs": jobs, "types": types, "wells": wells, "factories": factories,
        "tla": {
            "need": Seq(Seq({"type": t, "count": c} for t, c in jobs[j]["groups"]) for j in sorted(jobs)),
            "deps": Seq(Set(jobs[j]["deps"]) for j in sorted(jobs)),
            "onFailure": Seq(Set(jobs[j]["failure"]) for j in sorted(jobs)),
            "onEither": Seq(Set(jobs[j]["either"]) for j in sorted(jobs)),
            "awaits": Set(j for j in sorted(jobs) if jobs[j]["awaits"]),
            "target": Seq(jobs[j]["target"] for j in sorted(jobs)),
            "typeOrder": Seq(order),
            "pools": Set({"well": w, "types": Set(ts), "cap": cap}
                         for w, pools in sorted(wells.items()) for ts, cap in pools),
            "fcap": Fn((f, Fn(cap)) for f, cap in factories.items()),
            "policy": policy, "grant": grant, "shared": sharing == "shared",
            "gfm": limits["group_failures_max"], "dfm": limits["destroy_failures_max"],
        },
    }


# ---------------------------------------------------------------- the fold

class Books:
    """Aquifer.tla's state record, folded from the core's events."""

    def __init__(self, scope):
        self.scope = scope
        jobs = scope["jobs"]
        self.phase = {j: "new" for j in jobs}
        self.outcome = {j: "none" for j in jobs}
        self.grp = {j: ["idle"] * len(jobs[j]["groups"]) for j in jobs}
        self.gfail = {j: [0] * len(jobs[j]["groups"]) for j in jobs}
        self.wwant = {j: "idle" for j in jobs}
        self.leases, self.res, self.workers = {}, {}, {}
        self.next_lease = self.next_res = self.next_worker = 1
        self.hold = False
        self.inputs = {j: not jobs[j]["awaits"] for j in jobs}

    def job(self, j):
        if j not in self.phase:
            raise Reject("unknown job %r" % (j,))
        return j

    def group(self, j, g):
        self.job(j)
        if not isinstance(g, int) or not 0 <= g < len(self.grp[j]):
            raise Reject("job %d has no group %r" % (j, g))
        return g

    def resource(self, r):
        if r not in self.res:
            raise Reject("resource %r is not in the books" % (r,))
        return self.res[r]

    def worker(self, k):
        if k not in self.workers:
            raise Reject("worker %r is not in the books" % (k,))
        return self.workers[k]

    def release(self, r):
        x = self.res[r]
        x.update(st="releasing", lease=0, fails=0)

    def apply(self, e):
        kind = e.get("event")
        if kind in REGISTRATION or kind in ("dependency_settled", "lease_renewed"):
            return
        if kind == "leases_held":
            self.hold = bool(e["held"])
        elif kind == "job_submitted":
            self.phase[self.job(e["job"])] = "blocked"
        elif kind == "inputs_arrived":
            j = self.job(e["job"])
            if self.inputs[j]:
                raise Reject("job %d's inputs arrived twice" % j)
            self.inputs[j] = True
        elif kind == "acquisition_began":
            self.phase[self.job(e["job"])] = "acquiring"
        elif kind == "group_queued":
            j = e["job"]
            self.grp[j][self.group(j, e["group"])] = "acquiring"
        elif kind == "lease_granted":
            j, g, l = e["job"], e["group"], e["lease"]
            self.group(j, g)
            if l in self.leases:
                raise Reject("lease %d granted twice" % l)
            for r in e["resources"]:
                if r in self.res:
                    raise Reject("resource %d created twice" % r)
                self.res[r] = {"job": j, "grp": g + 1, "type": e["rtype"], "well": e["well"],
                               "st": "creating", "lease": l, "fails": 0}
            self.leases[l] = {"job": j, "grp": g + 1, "well": e["well"], "res": list(e["resources"])}
            self.next_lease = l + 1
            if e["resources"]:
                self.next_res = max(e["resources"]) + 1
        elif kind == "resource_ready":
            self.resource(e["resource"]).update(st="ready", lease=0)
        elif kind == "lease_fulfilled":
            if self.leases.pop(e["lease"], None) is None:
                raise Reject("lease %r is not in the books" % (e["lease"],))
        elif kind == "lease_ended":
            l = self.leases.pop(e["lease"], None)
            if l is None:
                raise Reject("lease %r is not in the books" % (e["lease"],))
            for r in l["res"]:
                if self.resource(r)["st"] in ("creating", "ready"):
                    self.release(r)
            if e["cause"] != "job_ended":
                self.gfail[l["job"]][l["grp"] - 1] += 1
        elif kind == "group_ready":
            j = e["job"]
            self.grp[j][self.group(j, e["group"])] = "ready"
        elif kind == "worker_queued":
            self.wwant[self.job(e["job"])] = "queued"
        elif kind == "worker_leased":
            k, j = e["worker"], self.job(e["job"])
            if k in self.workers:
                raise Reject("worker %d leased twice" % k)
            self.workers[k] = {"job": j, "fac": e["factory"], "st": "leased"}
            self.wwant[j] = "bound"
            self.next_worker = k + 1
        elif kind == "worker_lease_expired":
            w = self.worker(e["worker"])
            w["st"] = "releasing"
            self.wwant[w["job"]] = "queued"
        elif kind == "worker_created":
            self.worker(e["worker"])["st"] = "created"
        elif kind == "worker_online":
            self.worker(e["worker"])["st"] = "online"
        elif kind == "job_started":
            self.phase[self.job(e["job"])] = "running"
        elif kind == "job_ended":
            j = self.job(e["job"])
            self.phase[j] = "ended"
            self.outcome[j] = outcome_of(e["outcome"])
        elif kind == "resource_released":
            self.resource(e["resource"])
            self.release(e["resource"])
        elif kind == "worker_released":
            self.worker(e["worker"])["st"] = "releasing"
        elif kind == "destroy_failed":
            self.resource(e["resource"])["fails"] += 1
        elif kind == "resource_held":
            self.resource(e["resource"])["st"] = "held"
        elif kind == "held_released":
            self.resource(e["resource"]).update(st="releasing", fails=0)
        elif kind == "resource_destroyed":
            self.resource(e["resource"])
            del self.res[e["resource"]]
        elif kind == "worker_destroyed":
            self.worker(e["worker"])
            del self.workers[e["worker"]]
        elif kind == "job_retired":
            self.phase[self.job(e["job"])] = "retired"
        else:
            raise Reject("unknown event %r" % (kind,))

    def value(self):
        jobs = sorted(self.phase)
        return {
            "phase": Seq(self.phase[j] for j in jobs),
            "outcome": Seq(self.outcome[j] for j in jobs),
            "grp": Seq(Seq(self.grp[j]) for j in jobs),
            "gfail": Seq(Seq(self.gfail[j]) for j in jobs),
            "wwant": Seq(self.wwant[j] for j in jobs),
            "leases": Fn((l, {"job": x["job"], "grp": x["grp"], "well": x["well"], "res": Set(x["res"])})
                         for l, x in self.leases.items()),
            "res": Fn((r, dict(x)) for r, x in self.res.items()),
            "workers": Fn((k, dict(x)) for k, x in self.workers.items()),
            "nextLease": self.next_lease, "nextRes": self.next_res,
            "nextWorker": self.next_worker, "hold": self.hold,
            "inputs": Seq(self.inputs[j] for j in jobs),
        }


def split(events):
    """The spec actions one step stands for: a Tick may make several things
    due, each of which is one action of the spec."""
    parts = []
    for e in events:
        starts = DUE.get(e.get("event"), lambda e: False)(e)
        if not parts or (starts and parts[-1]):
            parts.append([])
        parts[-1].append(e)
    return parts or [[]]


def free_map(m):
    if not isinstance(m, dict) or not all(isinstance(v, int) and v >= 0 for v in m.values()):
        raise Reject("bad free map %r" % (m,))
    return Fn(m)


def classify(inp, evs):
    """What a part of a step must match in the spec."""
    step = {"kind": "act", "well": 0, "factory": 0, "free": Fn({}), "lease": 0, "held": False,
            "res": 0, "retryable": False}
    names = [e.get("event") for e in evs]
    which = (inp or {}).get("input")
    cause = evs[0].get("cause") if names[:1] == ["lease_ended"] else None
    if evs and all(n in REGISTRATION for n in names):
        step["kind"] = "stutter"
    elif "lease_granted" in names:
        if names != ["lease_granted"]:
            raise Reject("a lease was granted together with %s" % names)
        e = evs[0]
        step["well"] = e["well"]
        if which == "request_lease":
            if inp.get("well") != e["well"]:
                raise Reject("well %r asked, well %r was granted" % (inp.get("well"), e["well"]))
            step.update(kind="grant", free=free_map(inp.get("free")))
        else:
            step["kind"] = "grantroom"
    elif "worker_leased" in names:
        if names != ["worker_leased"]:
            raise Reject("a worker was leased together with %s" % names)
        e = evs[0]
        step["factory"] = e["factory"]
        if which == "request_worker":
            if inp.get("factory") != e["factory"]:
                raise Reject("factory %r asked, factory %r was granted" % (inp.get("factory"), e["factory"]))
            step.update(kind="worker", free=free_map(inp.get("free")))
        else:
            step["kind"] = "workerroom"
    elif cause == "expired":
        # the well died mid-create (a Tick found the lease due)
        step.update(kind="expire", lease=evs[0]["lease"])
    elif isinstance(cause, dict) and set(cause) == {"failed"}:
        # the well reported a failure: it names the resource and whether
        # trying again may help, which decides whether the job fails
        f = cause["failed"]
        step.update(kind="failed", res=f["resource"], retryable=bool(f["retryable"]))
    elif names == ["leases_held"]:
        step.update(kind="hold", held=bool(evs[0]["held"]))
    elif names and all(n == "lease_renewed" for n in names):
        if len(names) != 1:
            raise Reject("several leases renewed in one step")
        step.update(kind="renew", lease=evs[0]["lease"],
                    well=(inp or {}).get("well", 0) if which == "renew_lease" else 0)
    elif not evs:
        if which == "request_lease":
            step.update(kind="nogrant", well=inp.get("well"), free=free_map(inp.get("free")))
        elif which == "request_worker":
            step.update(kind="noworker", factory=inp.get("factory"), free=free_map(inp.get("free")))
        else:
            step["kind"] = "stutter"
    return step


def convert(trace):
    """A trace as a TLA+ record, with what each action in it stands for."""
    scope = scope_of(trace)
    books = Books(scope)
    steps, where = [], []
    for n, step in enumerate(trace["steps"], 1):
        inp = step.get("input")
        try:
            for part in split(step.get("events", [])):
                s = classify(inp, part)
                for e in part:
                    books.apply(e)
                s["post"] = books.value()
                steps.append(s)
                where.append((n, [e.get("event") for e in part]))
        except (KeyError, TypeError, ValueError) as err:
            raise Reject("step %d: malformed event (%s: %s)" % (n, type(err).__name__, err))
        except Reject as err:
            raise Reject("step %d: %s" % (n, err))
    rec = dict(scope["tla"])
    rec["steps"] = Seq(steps)
    return rec, where


# ---------------------------------------------------------------- reading traces

def read_traces(paths):
    """(file, trace) pairs from files and directories, in name order."""
    files = []
    for p in paths:
        if os.path.isdir(p):
            files += [os.path.join(p, f) for f in sorted(os.listdir(p)) if f.endswith((".json", ".jsonl"))]
        else:
            files.append(p)
    out = []
    for f in files:
        with open(f) as fh:
            if f.endswith(".jsonl"):
                for k, line in enumerate(fh, 1):
                    if line.strip():
                        out.append(("%s:%d" % (f, k), json.loads(line)))
            else:
                out.append((f, json.load(fh)))
    return out


def write_module(path, records):
    with open(path, "w") as fh:
        fh.write("---- MODULE AquiferTraceData ----\n")
        fh.write("\\* Generated by spec/trace.py: the traces of one TLC run.\nEXTENDS TLC\n")
        fh.write("E == [x \\in {} |-> 0]\n")
        share = Interner()
        body = ["T%d == %s" % (k, tla(rec, share)) for k, rec in enumerate(records, 1)]
        fh.write("\n".join(share.defs + body) + "\n")
        fh.write("Traces == <<%s>>\n" % ", ".join("T%d" % k for k in range(1, len(records) + 1)))
        fh.write("TraceFaults == %d\n====\n" % FAULTS)


# ---------------------------------------------------------------- running TLC

def run_batch(jar, workdir, items):
    """items: [(name, record, where)].  Returns {index: (reached, error)}."""
    write_module(os.path.join(workdir, "AquiferTraceData.tla"), [rec for _, rec, _ in items])
    for f in ("Aquifer.tla", "AquiferTrace.tla", "AquiferTrace.cfg"):
        shutil.copy(os.path.join(HERE, f), workdir)
    meta = tempfile.mkdtemp(prefix="meta", dir=workdir)
    # A long trace (a soak's, over a thousand steps of a hundred jobs) is a
    # deep value for TLC's evaluator: Java's default stack overflows on it.
    cmd = ["java", "-Xss64m", "-XX:+UseParallelGC", "-cp", jar, "tlc2.TLC", "-deadlock", "-workers", "1",
           "-nowarning", "-metadir", meta, "-config", "AquiferTrace.cfg", "AquiferTrace.tla"]
    p = subprocess.run(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    reached = {}
    for m in re.finditer(r'<<"TRACE", (\d+), (\d+)>>', p.stdout):
        t, n = int(m.group(1)), int(m.group(2))
        reached[t] = max(reached.get(t, 0), n)
    bad = None
    if p.returncode != 0:
        # An invariant of the spec broke in some trace's state (a bug of
        # the spec or of the fold), or TLC could not run at all.
        ts = re.findall(r"/\\ tr = (\d+)", p.stdout)
        bad = (int(ts[-1]) if ts else None, p.returncode, p.stdout)
    return reached, bad


def validate(args):
    start = time.time()
    work = args.dir or tempfile.mkdtemp(prefix="aquifer-traces-")
    os.makedirs(work, exist_ok=True)
    traces = read_traces(args.paths)
    results = []   # (where, name, expect, accepted, why)
    items = []
    for where, trace in traces:
        name = trace.get("name", where)
        expect = trace.get("expect", "valid")
        try:
            rec, steps = convert(trace)
            items.append((where, name, expect, rec, steps))
        except (Reject, KeyError, TypeError) as err:
            results.append((where, name, expect, False, "rejected by the fold: %s" % err))
    runs = 0
    pending = list(items)
    while pending:
        size = 1 if id(pending[0]) in BATCH_ALONE else BATCH
        batch, pending = pending[:size], pending[size:]
        runs += 1
        d = os.path.join(work, "run%d" % runs)
        os.makedirs(d, exist_ok=True)
        reached, bad = run_batch(args.jar, d, [(n, r, s) for _, n, _, r, s in batch])
        if bad is not None:
            t, rc, out = bad
            if t is None and len(batch) > 1:
                # TLC stopped without saying in which trace: try each alone.
                pending = list(batch) + pending
                BATCH_ALONE.update(id(b) for b in batch)
                continue
            if t is None:
                w, n, x, r, s = batch[0]
                first = next((l for l in out.splitlines() if "rror" in l or "xception" in l), "no output")
                results.append((w, n, x, False, "TLC failed on it (exit %d: %s)" % (rc, first.strip())))
                continue
            w, n, x, r, s = batch[t - 1]
            first = next((l for l in out.splitlines()
                          if "is violated" in l or "rror" in l or "xception" in l), "")
            results.append((w, n, x, False, "TLC stopped (exit %d%s) after trace step %d" % (
                rc, ": " + first.strip() if first else "", reached.get(t, 0))))
            pending = [b for k, b in enumerate(batch) if k != t - 1] + pending
            continue
        for k, (w, n, x, rec, steps) in enumerate(batch, 1):
            total = len(rec["steps"].items)
            got = reached.get(k, 0)
            if got == total:
                results.append((w, n, x, True, ""))
            else:
                step, evs = steps[got]
                results.append((w, n, x, False, "no action of the spec matches trace step %d (events %s)"
                                % (step, ", ".join(evs) or "none")))
    ok = 0
    for where, name, expect, accepted, why in results:
        good = accepted == (expect == "valid")
        ok += good
        if not good:
            print("trace %s (%s): expected %s, but %s" % (
                name, where, expect, "it was accepted" if accepted else why))
        elif args.verbose:
            print("trace %s: %s as expected%s" % (name, "accepted" if accepted else "rejected",
                                                  "" if accepted else " (%s)" % why))
    took = time.time() - start
    print("traces: %d validated, %d as expected (%d valid accepted, %d invalid rejected), %d TLC run(s), %.1f s"
          % (len(results), ok, sum(1 for r in results if r[3] and r[2] == "valid"),
             sum(1 for r in results if not r[3] and r[2] != "valid"), runs, took))
    if not args.keep and not args.dir:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok == len(results) else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("validate")
    v.add_argument("--jar", required=True)
    v.add_argument("--dir", help="work directory (kept)")
    v.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    v.add_argument("-v", "--verbose", action="store_true")
    v.add_argument("paths", nargs="+")
    c = sub.add_parser("convert")
    c.add_argument("--out", required=True)
    c.add_argument("paths", nargs="+")
    args = ap.parse_args()
    if args.cmd == "validate":
        sys.exit(validate(args))
    os.makedirs(args.out, exist_ok=True)
    recs = []
    for where, trace in read_traces(args.paths):
        try:
            recs.append(convert(trace)[0])
        except Reject as err:
            print("%s: %s" % (where, err), file=sys.stderr)
    write_module(os.path.join(args.out, "AquiferTraceData.tla"), recs)
    print("wrote %d trace(s) to %s" % (len(recs), os.path.join(args.out, "AquiferTraceData.tla")))


if __name__ == "__main__":
    main()
