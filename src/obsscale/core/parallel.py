"""Work items run in children forked from the calling process, a few at a time.

A forked child starts with everything the parent imported (no import cost per item) and from the
parent's state as it was before any item ran, so an item's result cannot depend on which items ran
before it in the same process or on how many ran at once."""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
from multiprocessing.connection import wait
from typing import Any, Callable, Sequence

from obsscale.core.errors import InputError

log = logging.getLogger(__name__)


def _portable(exc: BaseException) -> BaseException:
    """`exc` if it survives pickling both ways, else the same message in its nearest plain type
    (an input error stays an input error: the rule boundary prints it as one line)."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        kind = InputError if isinstance(exc, InputError) else RuntimeError
        text = str(exc) if kind is InputError else f"{type(exc).__name__}: {exc}"
        return kind(text)


def _child(func: Callable, args: tuple, conn) -> None:
    try:
        func(*args)
        conn.send(None)
    except BaseException as exc:  # noqa: BLE001  (every failure goes back to the parent)
        if not isinstance(exc, InputError):  # a bug: its traceback, which the parent cannot show
            log.error("worker for %s failed", args[:1], exc_info=True)
        conn.send(_portable(exc))
    finally:
        conn.close()
        os._exit(0)  # no teardown of the parent's modules in the child


def run_forked(func: Callable[..., Any], items: Sequence[tuple], workers: int = 1) -> None:
    """Call `func(*item)` for every item, each in its own child forked from this process, at most
    `workers` at once, in the order given.  The first failure is raised here once every child has
    ended (items not yet started are not started); `func`'s results are not returned (it writes
    files)."""
    ctx = multiprocessing.get_context("fork")
    pending = list(items)
    running: dict[Any, Any] = {}  # the pipe a child reports on -> the child
    failure: BaseException | None = None
    while running or (pending and failure is None):
        while pending and failure is None and len(running) < max(1, int(workers)):
            receive, send = ctx.Pipe(duplex=False)
            child = ctx.Process(target=_child, args=(func, pending.pop(0), send))
            child.start()
            send.close()
            running[receive] = child
        for receive in wait(list(running)):  # a report, or the end of a child that died first
            child = running.pop(receive)
            try:
                outcome = receive.recv()
            except EOFError:
                outcome = None
            receive.close()
            child.join()
            if outcome is None and child.exitcode != 0:
                outcome = RuntimeError(f"a worker process ended with exit code {child.exitcode} before reporting")
            if outcome is not None and failure is None:
                failure = outcome
    if failure is not None:
        raise failure
