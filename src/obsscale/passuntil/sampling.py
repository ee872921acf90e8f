"""The PassUntil sampling engine: one job per (model, task), resumable, exactly negative-binomial.

Each instance is sampled until its r-th pass or K_max attempts.  Work is done in rounds: in round k
every unfinished instance gets `task.batch_size(k)` attempts (geometric growth), and all of them
share backend calls to keep the device busy.  The stopping rule is applied in *sample order*:
attempts after the r-th pass of a round are kept in the log with `counted: false` and never enter
the estimate, so K is exactly the negative-binomial attempt count.

The log is JSONL: a header (the design), one record per sample (instance, attempt, seed, passed,
counted, round, text), and a `round_end` marker after each round, flushed and fsynced.  A job that
is killed loses at most the round in flight: on restart, records after the last `round_end` are
cut, the state is rebuilt from the log and the same rounds are replayed.  Seeds are derived from
(model, task, instance, attempt), so the resumed run draws the same samples as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from obsscale.passuntil.backends import Backend
from obsscale.passuntil.tasks import PassUntilTask, TaskError

log = logging.getLogger(__name__)


def derive_seed(model: str, task: str, instance, attempt: int, base_seed: int = 0) -> int:
    """A 63-bit seed from (model, task, instance, attempt): stable across runs and machines."""
    key = "\x1f".join(map(str, (base_seed, model, task, instance, attempt))).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") & (2**63 - 1)


class _State:
    def __init__(self, task: PassUntilTask):
        self.attempts = {i["id"]: 0 for i in task.instances}  # next attempt index
        self.counted = {i["id"]: 0 for i in task.instances}
        self.passes = {i["id"]: 0 for i in task.instances}
        self.next_round = 0
        self.greedy_done = False
        self.samples = 0
        self.finished = False  # the log already ends with its `done` record

    def done(self, inst, task) -> bool:
        return self.passes[inst] >= task.r or self.counted[inst] >= task.K_max


class StaleLog(Exception):
    """A log written for another design or model identity: never resumed."""


def set_aside(path: Path, why: str) -> Path:
    """Move a stale log out of the way (kept, named as such) and say so."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    aside = path.with_name(f"{path.stem}.stale-{stamp}{path.suffix}")
    n = 1
    while aside.exists():
        aside = path.with_name(f"{path.stem}.stale-{stamp}-{n}{path.suffix}")
        n += 1
    os.replace(path, aside)
    log.warning("%s was written for another %s: kept as %s; sampling starts afresh", path, why,
                aside.name)
    return aside


def _read_log(path: Path, model: str, task: PassUntilTask,
              identity: dict | None = None) -> tuple[_State, int]:
    """Rebuild the state from a log; returns it with the byte length of its complete rounds."""
    state = _State(task)
    keep = 0
    pending: list[dict] = []
    with open(path, "rb") as f:
        offset = 0
        for lineno, raw in enumerate(f, 1):
            offset += len(raw)
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError:
                break  # a line cut by the kill: everything after the last round_end is redone
            kind = rec.get("type")
            if lineno == 1:
                if kind != "header":
                    raise ValueError(f"{path}: line 1: not a PassUntil log header")
                if rec.get("model") != model or rec.get("identity") != identity:
                    raise StaleLog("model (name, weights, revision, backend or its options)")
                if rec.get("design") != task.design():
                    raise StaleLog("design (task file, data, checker or sampling settings)")
                keep = offset
                continue
            if kind == "round_end":
                for p in pending:
                    if p["type"] == "greedy":
                        continue
                    inst = p["instance"]
                    state.attempts[inst] = max(state.attempts[inst], p["attempt"] + 1)
                    state.samples += 1
                    if p["counted"]:
                        state.counted[inst] += 1
                        state.passes[inst] += bool(p["passed"])
                if rec["round"] < 0:
                    state.greedy_done = True
                else:
                    state.next_round = rec["round"] + 1
                pending = []
                keep = offset
            elif kind in ("sample", "greedy"):
                if kind == "sample" and rec.get("instance") not in state.attempts:
                    raise ValueError(f"{path}: line {lineno}: unknown instance {rec.get('instance')!r}")
                pending.append(rec)
            elif kind == "done":
                keep = offset
                state.finished = True
    return state, keep


class _Log:
    def __init__(self, path: Path, keep: int | None):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if keep is not None:
            with open(path, "r+b") as f:
                f.truncate(keep)
        self.f = open(path, "a", encoding="utf-8")

    def write(self, records: list[dict]) -> None:
        for rec in records:
            self.f.write(json.dumps(rec, sort_keys=True) + "\n")

    def commit(self) -> None:
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self) -> None:
        self.f.close()


def pass_until(task: PassUntilTask, backend: Backend, model: str, log_path: str | os.PathLike,
               *, check_workers: int = 1, progress: bool = True,
               crash_after_records: int | None = None, identity: dict | None = None) -> dict:
    """Sample `model` on `task` until r passes or K_max per instance, logging to `log_path`.

    Resumes from an existing log of the same design and model `identity` (see
    `identity.model_identity`); a log of another one is set aside (`<name>.stale-<time>.jsonl`) and
    sampling starts afresh.  Checkers that run code check their sandbox before anything is drawn
    (no sandbox: `SandboxUnavailable`).  `crash_after_records` raises after that many
    sample records have been written (and flushed) in this call: a test hook for an interrupted job.
    Returns a summary (instances, finished, censored, samples, seconds).
    """
    path = Path(log_path)
    inst_by_id = {i["id"]: i for i in task.instances}
    sandbox = task.checker.prepare()
    state, logf = _open_log(path, model, task, identity, sandbox)
    t0 = time.monotonic()
    bar = _progress(progress, len(task.instances))
    try:
        if task.greedy and not state.greedy_done:
            _greedy_round(task, backend, inst_by_id, logf)
        _sample_rounds(task, backend, model, inst_by_id, state, logf, bar, t0=t0,
                       check_workers=check_workers, crash_after_records=crash_after_records)
        censored = sum(state.passes[i] < task.r for i in inst_by_id)
        summary = {"instances": len(inst_by_id), "censored": censored, "samples": state.samples,
                   "rounds": state.next_round, "seconds": round(time.monotonic() - t0, 3)}
        if not state.finished:
            logf.write([{"type": "done", **summary}])
            logf.commit()
        return summary
    finally:
        logf.close()
        if bar is not None:
            bar.close()


def _open_log(path: Path, model: str, task: PassUntilTask, identity: dict | None,
              sandbox) -> tuple[_State, _Log]:
    """The sampling state and log: resumed from a log of the same design and model, else a new
    log with its header (a log of another design or model is set aside first)."""
    state = None
    if path.exists() and path.stat().st_size > 0:
        try:
            state, keep = _read_log(path, model, task, identity)
        except StaleLog as stale:
            set_aside(path, str(stale))
    if state is not None:
        logf = _Log(path, keep)
        log.info("%s: resuming at round %d with %d samples logged", path, state.next_round,
                 state.samples)
        return state, logf
    state = _State(task)
    logf = _Log(path, None)
    logf.write([{"type": "header", "model": model, "design": task.design(),
                 "identity": identity, **({"sandbox": sandbox} if sandbox else {})}])
    logf.commit()
    return state, logf


def _greedy_round(task: PassUntilTask, backend: Backend, inst_by_id: dict, logf: _Log) -> None:
    """One greedy answer per instance, checked and logged as round -1."""
    ids = list(inst_by_id)
    gens = backend.greedy([task.render(inst_by_id[i]) for i in ids],
                          max_new_tokens=task.max_new_tokens, stop=task.stop)
    recs = [{"type": "greedy", "instance": i, "passed": bool(task.checker(inst_by_id[i], g.text)),
             **({"text": g.text} if task.store_text else {})} for i, g in zip(ids, gens)]
    logf.write(recs + [{"type": "round_end", "round": -1}])
    logf.commit()


def _sample_rounds(task: PassUntilTask, backend: Backend, model: str, inst_by_id: dict,
                   state: _State, logf: _Log, bar, *, t0: float, check_workers: int,
                   crash_after_records: int | None) -> None:
    """Sampling rounds until every instance is finished (r passes or K_max samples)."""
    written = 0
    drawn0 = state.samples
    with ThreadPoolExecutor(max_workers=max(1, check_workers)) as pool:
        while True:
            todo = [i for i in inst_by_id if not state.done(i, task)]
            if bar is not None:
                bar.n = len(task.instances) - len(todo)
                bar.refresh()
            if not todo:
                break
            k = state.next_round
            plan = _plan_round(task, state, model, todo, k)
            gens, passed = _draw_and_check(task, backend, pool, inst_by_id, plan)
            records = _count_samples(task, state, plan, gens, passed, k)
            written = _write_round(logf, records, k, written, crash_after_records)
            state.samples += len(records)
            state.next_round = k + 1
            rate = (state.samples - drawn0) / max(time.monotonic() - t0, 1e-9)
            log.info("round %d: %d/%d instances finished, %d samples drawn, %.1f samples/s",
                     k, sum(state.done(i, task) for i in inst_by_id), len(inst_by_id),
                     state.samples, rate)
            if bar is not None:
                bar.set_postfix(samples=state.samples, rate=f"{rate:.1f}/s")


def _plan_round(task: PassUntilTask, state: _State, model: str, todo: list, k: int) -> list:
    """(instance, attempt, seed) of round `k`'s samples, in sample order per instance."""
    plan = []
    for inst in todo:
        b = min(task.batch_size(k), task.K_max - state.counted[inst])
        a0 = state.attempts[inst]
        plan += [(inst, a, derive_seed(model, task.name, inst, a, task.seed))
                 for a in range(a0, a0 + b)]
    if not plan:
        # Every unfinished instance would get 0 attempts: the loop would never end.
        raise TaskError(f"task {task.name}: round {k} draws no sample for {len(todo)} "
                        f"unfinished instance(s) (batch {task.batch}); each round must "
                        "draw at least one sample")
    return plan


def _draw_and_check(task: PassUntilTask, backend: Backend, pool: ThreadPoolExecutor,
                    inst_by_id: dict, plan: list) -> tuple[list, list[bool]]:
    """The backend's generations for a round's plan and whether each passes the checker."""
    gens = backend.sample([task.render(inst_by_id[i]) for i, _, _ in plan],
                          [s for _, _, s in plan], temperature=task.temperature,
                          top_p=task.top_p, max_new_tokens=task.max_new_tokens,
                          stop=task.stop)
    if len(gens) != len(plan):
        raise RuntimeError(f"backend returned {len(gens)} generations for {len(plan)} prompts")
    passed = list(pool.map(lambda pg: bool(task.checker(inst_by_id[pg[0][0]], pg[1].text)),
                           zip(plan, gens)))
    return gens, passed


def _count_samples(task: PassUntilTask, state: _State, plan: list, gens: list, passed: list,
                   k: int) -> list[dict]:
    """Applies a round's samples to the counts (stopping rule in sample order); their records."""
    records = []
    for (inst, a, seed), g, ok in zip(plan, gens, passed):
        # The stopping rule in sample order: after the r-th pass nothing counts.
        counted = not state.done(inst, task)
        if counted:
            state.counted[inst] += 1
            state.passes[inst] += ok
        state.attempts[inst] = a + 1
        records.append({"type": "sample", "instance": inst, "attempt": a, "seed": seed,
                        "passed": ok, "counted": counted, "round": k,
                        "tokens": g.n_tokens,
                        **({"text": g.text} if task.store_text else {})})
    return records


def _write_round(logf: _Log, records: list[dict], k: int, written: int,
                 crash_after_records: int | None) -> int:
    """Writes a round's records and its end marker; returns the records written in this call."""
    for rec in records:
        logf.write([rec])
        written += 1
        if crash_after_records is not None and written >= crash_after_records:
            logf.commit()
            raise RuntimeError(f"injected crash after {written} records")
    logf.write([{"type": "round_end", "round": k, "samples": len(records)}])
    logf.commit()
    return written


def _progress(enabled: bool, total: int):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, unit="inst", desc="instances finished", mininterval=1.0)


def read_samples(path: str | os.PathLike) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """(header, samples, greedy) of a log; only complete rounds are returned."""
    header: dict = {}
    samples, greedy, pending = [], [], []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                break
            kind = rec.get("type")
            if kind == "header":
                header = rec
            elif kind in ("sample", "greedy"):
                pending.append(rec)
            elif kind == "round_end":
                for p in pending:
                    (samples if p["type"] == "sample" else greedy).append(p)
                pending = []
    if not header:
        raise ValueError(f"{path}: no PassUntil header")
    cols = ["instance", "attempt", "seed", "passed", "counted", "round"]
    return (header, pd.DataFrame(samples, columns=cols + ["tokens", "text"]),
            pd.DataFrame(greedy, columns=["instance", "passed", "text"]))


def counts_from_log(path: str | os.PathLike) -> pd.DataFrame:
    """Per instance: K (counted attempts), passes, and the conventional numbers from the same log:
    greedy pass, n0 / c0 = samples / passes of round 0 (all of them, counted or not: a fixed-n
    sample for pass@k), and drawn / passes_drawn = every sample drawn and its passes (the
    `all_samples` estimator's counts)."""
    header, s, g = read_samples(path)
    design = header["design"]
    counted = s[s["counted"].astype(bool)]
    out = counted.groupby("instance").agg(K=("passed", "size"), passes=("passed", "sum"))
    r0 = s[s["round"] == 0].groupby("instance").agg(n0=("passed", "size"), c0=("passed", "sum"))
    everything = s.groupby("instance").agg(drawn=("passed", "size"), passes_drawn=("passed", "sum"))
    out = out.join(r0, how="outer").join(everything, how="outer")
    if len(g):
        out = out.join(g.set_index("instance")[["passed"]].rename(columns={"passed": "greedy"}))
    else:
        out["greedy"] = pd.NA
    out = out.reset_index().rename(columns={"index": "instance"})
    out.attrs["design"] = design
    return out
