"""``manage.py run_periodic``: run the beat schedule's tasks in this process, for the embedded mode.

Without a broker there is no Celery beat; this loop runs each task of
``CELERY_BEAT_SCHEDULE`` in-process (``task.apply()``) every ``schedule``
seconds, so replication sweeps and peer health polls still happen. Deployments
run ``celery beat`` instead.
"""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the periodic tasks of CELERY_BEAT_SCHEDULE in this process (embedded mode)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="run every task once and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        from saas.celery import app

        app.loader.import_default_modules()  # autodiscover the tasks, as a worker does
        schedule: dict[str, dict[str, Any]] = dict(settings.CELERY_BEAT_SCHEDULE)
        due = dict.fromkeys(schedule, 0.0)
        running = True

        def stop(signum: int, frame: object) -> None:
            nonlocal running
            running = False

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stderr.write(f"run_periodic: {len(schedule)} periodic tasks in process")
        while running:
            now = time.monotonic()
            for name, entry in schedule.items():
                if now < due[name]:
                    continue
                interval = entry.get("schedule")
                if not isinstance(interval, (int, float)):
                    continue  # crontab entries need beat
                due[name] = now + float(interval)
                try:
                    app.tasks[entry["task"]].apply(args=entry.get("args", ()), kwargs=entry.get("kwargs", {}))
                except Exception:
                    logger.exception("periodic task %s failed", entry["task"])
            if options["once"]:
                return
            time.sleep(0.2)
