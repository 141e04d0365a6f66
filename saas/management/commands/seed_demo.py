"""``manage.py seed_demo``: a small demo data set for this region, created once.

Creates, through the services (so the directory and replication see it), an
admin, a demo user who owns two organizations homed in this region, a project
with documents in each, and an API token. The generated credentials are kept
in ``--state`` (mode 600) so a second run prints them again and creates nothing.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from regions.selectors import current_region
from saas import services
from saas.models import User
from saas.selectors import membership_for_user

DEMO_ORGS = {
    "EU": ("Acme Europe", "Globex Europe"),
    "US": ("Acme Americas", "Globex Americas"),
    "APAC": ("Acme Asia", "Globex Asia"),
}


def _slug(name: str, region: str) -> str:
    return f"{name.lower().replace(' ', '-')}-{region}"


class Command(BaseCommand):
    help = "Seed this region's demo data set once; print the credentials as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--state", type=Path, help="file keeping the generated credentials (default: none)"
        )
        parser.add_argument("--json", action="store_true", help="print the state as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        state_path: Path | None = options["state"]
        if state_path is not None and state_path.exists():
            state = json.loads(state_path.read_text())
        else:
            state = self._seed()
            if state_path is not None:
                state_path.write_text(json.dumps(state, indent=2))
                state_path.chmod(0o600)
        if options["json"]:
            self.stdout.write(json.dumps(state))
        else:
            self.stdout.write(f"admin {state['admin']['email']} / {state['admin']['password']}")

    @transaction.atomic
    def _seed(self) -> dict[str, Any]:
        region = current_region()
        code = settings.REGION
        admin_email = f"admin@{code}.demo.example"
        admin_password = secrets.token_urlsafe(12)
        if not User.objects.filter(email=admin_email).exists():
            admin = services.user_create(email=admin_email, password=admin_password, name="Region admin")
            User.objects.filter(pk=admin.pk).update(is_staff=True, is_superuser=True)
        demo_email = f"demo@{code}.demo.example"
        demo_password = secrets.token_urlsafe(12)
        first, second = DEMO_ORGS.get(region.zone, ("Acme", "Globex"))
        result = services.signup(
            email=demo_email,
            password=demo_password,
            name="Demo user",
            region=code,
            organization_name=first,
            organization_slug=_slug(first, code),
        )
        user = result.user
        services.organization_create(name=second, slug=_slug(second, code), owner=user)
        slugs = [_slug(first, code), _slug(second, code)]
        for slug in slugs:
            actor = membership_for_user(user=user, org_slug=slug)
            project = services.project_create(actor=actor, name="Onboarding")
            for index in range(1, 4):
                services.document_create(
                    actor=actor,
                    project=project,
                    title=f"Welcome note {index}",
                    body="Demo text kept in region.",
                )
        token_actor = membership_for_user(user=user, org_slug=slugs[0])
        _token, new = services.api_token_create(actor=token_actor, name="demo")
        return {
            "admin": {"email": admin_email, "password": admin_password},
            "demo": {
                "user": demo_email,
                "password": demo_password,
                "organizations": slugs,
                "api_token": new.raw,
            },
        }
