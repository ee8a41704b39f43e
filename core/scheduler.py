"""Periodic jobs run in-process: the Celery beat schedule, without a broker.

With Redis, Celery beat and workers run settings.CELERY_BEAT_SCHEDULE. Without it (the
embedded default, the demo) BACKGROUND_JOBS is "in-process" and a thread here calls the same
task functions, looked up by name in the Celery app's registry and run synchronously, so the
embedded stack takes the same code paths as production.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)


@dataclass
class Job:
    name: str
    interval_s: float
    run: Callable[[], object]
    next_at: float = 0.0  # on the scheduler's clock; 0 means "at the first pass"


def beat_jobs(schedule: dict | None = None) -> list[Job]:
    """Jobs for the beat schedule's tasks, or none when Celery beat runs them."""
    if settings.BACKGROUND_JOBS != "in-process":
        return []
    from celery import current_app as app  # the project's app (config.celery), without importing config

    app.loader.import_default_modules()  # autodiscovered tasks register on import
    jobs = []
    entries = settings.CELERY_BEAT_SCHEDULE if schedule is None else schedule
    for name, entry in entries.items():
        every = entry["schedule"]
        if isinstance(every, timedelta):
            every = every.total_seconds()
        if not isinstance(every, int | float):
            logger.warning("beat entry %s: only fixed intervals run in-process; skipped", name)
            continue
        task = app.tasks[entry["task"]]
        run = partial(task, *entry.get("args", ()), **entry.get("kwargs", {}))
        jobs.append(Job(name=name, interval_s=float(every), run=run))
    return jobs


class Scheduler:
    """Runs due jobs one after another on one background thread until stopped.

    A job that raises is logged and tried again at its next interval; the others go on.
    """

    def __init__(self, jobs: list[Job], *, clock: Callable[[], float] = time.monotonic) -> None:
        self.jobs = jobs
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run_due(self) -> list[str]:
        """Run every job that is due now; return their names."""
        ran = []
        for job in self.jobs:
            if self._stop.is_set():
                break
            now = self.clock()
            if now < job.next_at:
                continue
            job.next_at = now + job.interval_s
            try:
                job.run()
            except Exception:
                logger.exception("scheduled job %s failed", job.name)
            ran.append(job.name)
        return ran

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                # Like a request: drop connections that broke or outlived CONN_MAX_AGE.
                close_old_connections()
                self.run_due()
                if not self.jobs:
                    self._stop.wait(1.0)
                    continue
                wait = min(job.next_at for job in self.jobs) - self.clock()
                self._stop.wait(min(max(wait, 0.05), 1.0))
        finally:
            connections.close_all()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="fleetroot-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
