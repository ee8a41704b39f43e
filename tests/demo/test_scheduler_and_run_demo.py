"""The in-process scheduler (Celery beat without a broker) and the run_demo command's parts."""

import threading
from datetime import timedelta

import httpx
import pytest
from celery.schedules import crontab
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from core.models import IdempotencyRecord
from core.scheduler import Job, Scheduler, beat_jobs
from demo.management.commands.run_demo import SimulatorJob
from demo.simulator import TickReport


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_beat_jobs_follow_the_celery_beat_schedule(settings):
    settings.BACKGROUND_JOBS = "in-process"  # as without REDIS_URL, whatever this run uses
    jobs = {job.name: job for job in beat_jobs()}
    assert set(jobs) == set(settings.CELERY_BEAT_SCHEDULE)
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert jobs[name].interval_s == float(entry["schedule"])


def test_a_beat_job_runs_the_registered_task_synchronously(org, settings):
    settings.BACKGROUND_JOBS = "in-process"
    old = IdempotencyRecord.objects.create(
        organisation=org, caller="k", key="old", request_fingerprint="f", state="completed"
    )
    IdempotencyRecord.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    IdempotencyRecord.objects.create(
        organisation=org, caller="k", key="new", request_fingerprint="f", state="completed"
    )
    schedule = {
        "purge": {"task": "core.purge_expired_idempotency_records", "schedule": timedelta(minutes=5)},
        "monthly": {"task": "integrations.send_due_webhooks", "schedule": crontab(day_of_month=1)},
    }
    jobs = beat_jobs(schedule)
    assert [(job.name, job.interval_s) for job in jobs] == [("purge", 300.0)]  # crontab: not in-process
    assert jobs[0].run() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


def test_no_in_process_jobs_when_celery_runs_them():
    with override_settings(BACKGROUND_JOBS="celery"):
        assert beat_jobs() == []


def test_scheduler_runs_due_jobs_on_their_interval_and_survives_failures():
    clock, calls = FakeClock(), []

    def broken():
        calls.append("broken")
        raise RuntimeError("boom")

    scheduler = Scheduler(
        [Job("fast", 2.0, lambda: calls.append("fast")), Job("broken", 5.0, broken)], clock=clock
    )
    assert scheduler.run_due() == ["fast", "broken"]
    clock.now += 1.0
    assert scheduler.run_due() == []
    clock.now += 1.0
    assert scheduler.run_due() == ["fast"]
    clock.now += 3.0
    assert scheduler.run_due() == ["fast", "broken"]
    assert calls == ["fast", "broken", "fast", "fast", "broken"]


def test_scheduler_thread_starts_and_stops():
    ran = threading.Event()
    scheduler = Scheduler([Job("signal", 60.0, ran.set)])
    scheduler.start()
    try:
        assert ran.wait(5)
    finally:
        scheduler.stop(timeout=5)
    assert scheduler.stopping and not scheduler._thread.is_alive()


class FakeSimulator:
    def __init__(self):
        self.ticks = []

    def tick(self, now):
        self.ticks.append(now)
        return TickReport(placed=1, assigned=1, delivered=0, seconds=0.01)


def test_simulator_job_waits_for_healthz_before_ticking():
    answers = iter([503, 503, 200])
    transport = httpx.MockTransport(lambda request: httpx.Response(next(answers)))
    with httpx.Client(transport=transport, base_url="http://demo") as client:
        simulator = FakeSimulator()
        job = SimulatorJob(simulator, client, should_stop=lambda: False)
        job()
        assert job.ready and len(simulator.ticks) == 1
        job()
        assert job.totals == {"placed": 2, "rejected": 0, "assigned": 2, "delivered": 0, "rated": 0}


def test_simulator_job_does_not_tick_when_told_to_stop():
    transport = httpx.MockTransport(lambda request: httpx.Response(503))
    with httpx.Client(transport=transport, base_url="http://demo") as client:
        simulator = FakeSimulator()
        job = SimulatorJob(simulator, client, should_stop=lambda: True)
        job()
        assert not job.ready and simulator.ticks == []


def test_run_demo_needs_the_demo_city(db, tmp_path):
    with override_settings(SECURE_SSL_REDIRECT=False), pytest.raises(CommandError, match="seed_demo"):
        call_command("run_demo", "--port", "8799", "--api-key-file", str(tmp_path / "missing"))


def test_run_demo_refuses_to_serve_plain_http_behind_ssl_redirect(db):
    with override_settings(SECURE_SSL_REDIRECT=True), pytest.raises(CommandError, match="plain HTTP"):
        call_command("run_demo", "--no-simulator")
