"""The residency audit checks. Each runs set-based (SQL aggregates, Redis SCAN), never row by row."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connections, models

from regions.placement import DataClass, placement_of
from regions.selectors import get_registry
from residency import pii
from residency.audit.base import (
    SAMPLE_SIZE,
    AuditContext,
    CheckResult,
    Evidence,
    Status,
    audit_check,
    verdict,
)
from residency.checks import replica_region_problems
from residency.models import DirectoryEntry


def _concrete_models(context: AuditContext) -> list[type[models.Model]]:
    return [m for m in context.apps.get_models() if not m._meta.auto_created and not m._meta.proxy]


def _column(model: type[models.Model], name: str) -> str:
    field = model._meta.get_field(name)
    column = getattr(field, "column", None)
    if not isinstance(column, str):
        raise TypeError(f"{model._meta.label}.{name} is not a concrete column")
    return column


def _fetch(sql: str, params: Iterable[Any] = (), *, alias: str = "default") -> list[tuple[Any, ...]]:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, list(params))
        return list(cursor.fetchall())


# --- 1. Resident rows belong here ------------------------------------------------


@audit_check(
    id="RES-01",
    title="Resident data belongs to this region",
    description=(
        "Every row of personal or customer data (resident data) stored in this region must belong to "
        "a subject whose home region is this region. Rows with no home region are violations."
    ),
)
def check_resident_rows(context: AuditContext) -> CheckResult:
    evidence = Evidence(config={"region": context.region, "zone": context.zone})
    findings = 0
    for model in _concrete_models(context):
        placement = placement_of(model)
        if (
            placement is None
            or placement.data_class is not DataClass.RESIDENT
            or not placement.home_region_field
        ):
            continue
        table = model._meta.db_table
        column = _column(model, placement.home_region_field)
        pk = model._meta.pk.column if model._meta.pk and model._meta.pk.column else "id"
        qn = connections["default"].ops.quote_name
        context.say(f"  scanning {table}")
        bad = f"({qn(column)} IS NULL OR {qn(column)} = '' OR {qn(column)} <> %s)"
        count_sql = (
            f"SELECT count(*), count(*) FILTER (WHERE {qn(column)} IS NULL OR {qn(column)} = ''), "  # noqa: S608
            f"count(*) FILTER (WHERE {bad}) FROM {qn(table)}"
        )
        total, missing, violations = _fetch(count_sql, [context.region])[0]
        evidence.queries.append(count_sql.replace("%s", repr(context.region)))
        evidence.counts[f"{table}.rows"] = int(total)
        if violations:
            sample_sql = f"SELECT {qn(pk)} FROM {qn(table)} WHERE {bad} ORDER BY 1 LIMIT {SAMPLE_SIZE}"  # noqa: S608
            evidence.samples[table] = [str(row[0]) for row in _fetch(sample_sql, [context.region])]
            evidence.counts[f"{table}.foreign_or_unset"] = int(violations)
            evidence.counts[f"{table}.no_home_region"] = int(missing)
            findings += int(violations)
    # Organizations homed here according to their row must also be homed here in the directory.
    org_table = "saas_organization"
    if org_table in connections["default"].introspection.table_names():
        sql = (
            "SELECT o.slug FROM saas_organization o JOIN residency_directoryentry d "
            "ON d.kind = 'org' AND d.key = o.slug WHERE d.home_region <> %s ORDER BY 1"
        )
        moved = _fetch(sql, [context.region])
        evidence.queries.append(sql.replace("%s", repr(context.region)))
        evidence.counts["organizations_homed_elsewhere_in_directory"] = len(moved)
        if moved:
            evidence.samples["organizations_homed_elsewhere_in_directory"] = [
                r[0] for r in moved[:SAMPLE_SIZE]
            ]
            findings += len(moved)
    status = verdict(findings)
    summary = (
        "All resident rows belong to subjects homed in this region."
        if status is Status.PASS
        else f"{findings} resident row(s) belong to another region or to none."
    )
    return CheckResult(status, findings, summary, evidence)


# --- 2. Every model declares a data class ------------------------------------------


@audit_check(
    id="RES-02",
    title="Every kind of data is classified",
    description=(
        "Every table the application stores must declare whether it holds resident data (stays in its "
        "home region), directory data (replicated, no personal data) or operational data (local)."
    ),
)
def check_data_classes(context: AuditContext) -> CheckResult:
    evidence = Evidence()
    unclassified: list[str] = []
    for model in _concrete_models(context):
        placement = placement_of(model)
        if placement is None:
            unclassified.append(model._meta.label)
            continue
        key = f"models.{placement.data_class}"
        evidence.counts[key] = evidence.counts.get(key, 0) + 1
        evidence.config[model._meta.label] = f"{placement.data_class} ({placement.source})"
    evidence.counts["models.unclassified"] = len(unclassified)
    if unclassified:
        evidence.samples["unclassified"] = unclassified
    status = verdict(len(unclassified))
    summary = (
        "Every model declares a data class."
        if status is Status.PASS
        else f"{len(unclassified)} model(s) declare no data class: {', '.join(unclassified)}."
    )
    return CheckResult(status, len(unclassified), summary, evidence)


# --- 3. Replicated and stored payloads hold no personal data ---------------------

_DIRECTORY_KEY_SHAPES = {
    DirectoryEntry.Kind.ORGANIZATION: r"^[-a-zA-Z0-9_]+$",
    DirectoryEntry.Kind.USER: r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    DirectoryEntry.Kind.LOGIN: r"^[0-9a-f]{64}$",
}


def _directory_scan(evidence: Evidence) -> int:
    shape = " OR ".join(
        f"(kind = '{kind}' AND key ~ '{pattern}')" for kind, pattern in _DIRECTORY_KEY_SHAPES.items()
    )
    sql = (
        "SELECT id::text FROM residency_directoryentry WHERE "  # noqa: S608
        f"key ~ %s OR key ~ %s OR NOT ({shape}) "
        "OR home_region !~ '^[a-z]{2}-[a-z]+-[0-9]{1,2}$' OR origin_region !~ '^[a-z]{2}-[a-z]+-[0-9]{1,2}$' "
        "ORDER BY id"
    )
    rows = _fetch(sql, [pii.PG_EMAIL, pii.PG_IPV4])
    evidence.queries.append(sql)
    evidence.counts["directory.rows"] = int(_fetch("SELECT count(*) FROM residency_directoryentry")[0][0])
    evidence.counts["directory.violations"] = len(rows)
    if rows:
        evidence.samples["directory"] = [r[0] for r in rows[:SAMPLE_SIZE]]
    return len(rows)


def _json_store_scan(
    evidence: Evidence, *, label: str, table: str, column: str | None, allowed_keys: set[str] | None
) -> int:
    """Scan a JSON column (or, with ``column=None``, every column of the row) set-based.

    Flags keys outside the allowlist, emails and IP addresses, and values equal
    to the name of one of this region's users.
    """
    qn = connections["default"].ops.quote_name
    if table not in connections["default"].introspection.table_names():
        evidence.notes.append(f"{label}: table {table} not present")
        return 0
    value = f"t.{qn(column)}::jsonb" if column else "to_jsonb(t)"
    conditions = [f"{value}::text ~ %s", f"{value}::text ~ %s"]
    params: list[Any] = [pii.PG_EMAIL, pii.PG_IPV4]
    if allowed_keys is not None:
        conditions.append(f"EXISTS (SELECT 1 FROM jsonb_object_keys({value}) k WHERE NOT (k = ANY(%s)))")  # noqa: S608
        params.append(sorted(allowed_keys))
    conditions.append(
        f"EXISTS (SELECT 1 FROM jsonb_each_text({value}) v "  # noqa: S608
        "JOIN saas_user u ON u.name <> '' AND v.value = u.name)"
    )
    # Identifiers come from model metadata and are quoted; values are parameters.
    where = " OR ".join(conditions)
    sql = f"SELECT t.id::text FROM {qn(table)} t WHERE {where} ORDER BY 1"  # noqa: S608
    rows = _fetch(sql, params)
    evidence.queries.append(sql)
    evidence.counts[f"{label}.rows"] = int(_fetch(f"SELECT count(*) FROM {qn(table)}")[0][0])  # noqa: S608
    evidence.counts[f"{label}.violations"] = len(rows)
    if rows:
        evidence.samples[label] = [r[0] for r in rows[:SAMPLE_SIZE]]
    return len(rows)


def payload_stores(context: AuditContext) -> list[dict[str, Any]]:
    """JSON columns that carry replicated data (outbox, dead letters), with their allowlists.

    A model declares one with ``payload_field = "payload"`` and, when its keys are
    fixed, ``payload_allowed_keys = frozenset({...})``.
    """
    stores: list[dict[str, Any]] = []
    for model in _concrete_models(context):
        field_name = getattr(model, "payload_field", None)
        if not field_name:
            continue
        allowed = getattr(model, "payload_allowed_keys", None)
        stores.append(
            {
                "label": model._meta.label_lower,
                "table": model._meta.db_table,
                "column": _column(model, field_name),
                "allowed_keys": set(allowed) if allowed is not None else None,
            }
        )
    return stores


@audit_check(
    id="RES-03",
    title="Replicated data holds no personal data",
    description=(
        "The directory, the replication outbox and the dead letters hold only allowlisted fields: "
        "no emails, names or IP addresses in clear. The stored values are scanned, not only the column names."
    ),
)
def check_payloads(context: AuditContext) -> CheckResult:
    evidence = Evidence()
    findings = _directory_scan(evidence)
    for store in payload_stores(context):
        findings += _json_store_scan(evidence, **store)
    status = verdict(findings)
    summary = (
        "The directory and replication payloads hold no personal data."
        if status is Status.PASS
        else f"{findings} stored record(s) hold personal data or fields outside the allowlist."
    )
    return CheckResult(status, findings, summary, evidence)


# --- 4. Replicas are in allowed regions -----------------------------------------------


def _conninfo_value(conninfo: str, key: str) -> str | None:
    match = re.search(rf"(?:^|\s){key}=(\S+)", conninfo or "")
    return match.group(1).strip("'") if match else None


@audit_check(
    id="RES-04",
    title="Database copies stay in the zone",
    description=(
        "Every replica of this region's database runs in an allowed region of its zone. The configured "
        "replicas are compared with the standbys the primary actually streams to (pg_stat_replication) "
        "and with what each replica reports (pg_stat_wal_receiver)."
    ),
)
def check_replicas(context: AuditContext) -> CheckResult:
    registry = get_registry()
    evidence = Evidence(
        config={
            "DATABASE_REPLICAS": list(settings.DATABASE_REPLICAS),
            "DATABASE_REPLICA_REGIONS": dict(settings.DATABASE_REPLICA_REGIONS),
            "allowed_regions": sorted(context.allowed_regions()),
        }
    )
    problems = replica_region_problems()
    for problem in problems:
        evidence.notes.append(problem)
    findings = len(problems)
    if connections["default"].vendor != "postgresql":
        evidence.notes.append("embedded SQLite database: no streaming replication to inspect")
        return CheckResult(verdict(findings), findings, _replica_summary(findings), evidence)
    streaming = _fetch("SELECT application_name, state FROM pg_stat_replication ORDER BY 1")
    evidence.queries.append("SELECT application_name, state FROM pg_stat_replication")
    evidence.counts["standbys.streaming"] = len(streaming)
    reported: dict[str, str] = {}
    unreachable: list[str] = []
    for alias in settings.DATABASE_REPLICAS:
        try:
            rows = _fetch("SELECT status, conninfo FROM pg_stat_wal_receiver", alias=alias)
        except Exception as exc:
            unreachable.append(alias)
            evidence.notes.append(f"{alias}: unreachable ({type(exc).__name__})")
            continue
        if rows:
            name = _conninfo_value(str(rows[0][1]), "application_name") or alias
            reported[name] = alias
    evidence.queries.append("SELECT status, conninfo FROM pg_stat_wal_receiver  -- on each replica")
    unknown = [str(name) for name, _state in streaming if name not in reported]
    incomplete = False
    if unknown and len(unknown) <= len(unreachable):
        # The unmatched standbys may be the configured replicas we could not reach.
        incomplete = True
        evidence.notes.append("standbys could not be matched while configured replicas are unreachable")
    elif unknown:
        evidence.samples["unconfigured_standbys"] = unknown[:SAMPLE_SIZE]
        evidence.notes.append(
            "standbys stream from this primary that no configured replica accounts for; "
            "their location is unknown"
        )
        findings += len(unknown)
    placed = {alias: code for alias, code in settings.DATABASE_REPLICA_REGIONS.items()}
    outside = [
        alias
        for alias, code in placed.items()
        if code not in registry.regions or code not in context.allowed_regions()
    ]
    if outside:
        evidence.samples["replicas_outside_zone"] = outside
    status = verdict(findings, incomplete=incomplete)
    return CheckResult(status, findings, _replica_summary(findings), evidence)


def _replica_summary(findings: int) -> str:
    if not findings:
        return "Every copy of this region's database runs in an allowed region of its zone."
    return f"{findings} database copy problem(s): a replica outside the zone or an unaccounted standby."


# --- 9. Cookies and CSRF origins name exact region hosts ---------------------------------


@audit_check(
    id="RES-09",
    title="Browser credentials stay on this region's hosts",
    description=(
        "Session and CSRF cookies are host-only (no parent domain), and the trusted CSRF origins are "
        "exact origins of this region, with no wildcards, so a browser never sends one region's "
        "credentials to another."
    ),
)
def check_cookies_and_origins(context: AuditContext) -> CheckResult:
    region = get_registry().region(context.region)
    own_origins = {region.public_url, region.internal_url}
    own_hosts = {urlsplit(u).hostname for u in own_origins}
    evidence = Evidence(
        config={
            "SESSION_COOKIE_DOMAIN": settings.SESSION_COOKIE_DOMAIN,
            "CSRF_COOKIE_DOMAIN": settings.CSRF_COOKIE_DOMAIN,
            "CSRF_TRUSTED_ORIGINS": list(settings.CSRF_TRUSTED_ORIGINS),
            "ALLOWED_HOSTS": list(settings.ALLOWED_HOSTS),
            "region_origins": sorted(own_origins),
        }
    )
    bad: list[str] = []
    for name in ("SESSION_COOKIE_DOMAIN", "CSRF_COOKIE_DOMAIN"):
        domain = getattr(settings, name)
        if domain is not None and domain not in own_hosts:
            bad.append(f"{name}={domain!r} is not host-only nor an exact region host")
    for origin in settings.CSRF_TRUSTED_ORIGINS:
        if "*" in origin or origin not in own_origins:
            bad.append(f"CSRF_TRUSTED_ORIGINS has {origin!r}, not an exact origin of {context.region}")
    for host in settings.ALLOWED_HOSTS:
        if host == "*" or host.startswith("."):
            bad.append(f"ALLOWED_HOSTS has the pattern {host!r}")
    evidence.notes.extend(bad)
    evidence.counts["problems"] = len(bad)
    summary = (
        "Cookies are host-only and every trusted origin is an exact origin of this region."
        if not bad
        else f"{len(bad)} cookie or origin setting(s) reach beyond this region's hosts."
    )
    return CheckResult(verdict(len(bad)), len(bad), summary, evidence)


# --- 5. Caches and queued messages hold no other zone's resident data -------------------

_LOGIN_KEY_RE = re.compile(rb"\b[0-9a-f]{64}\b")
_UUID_BYTES_RE = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_EMAIL_BYTES_RE = re.compile(pii.EMAIL_RE.pattern.encode())


def _redact(name: bytes) -> str:
    """A key name fit for a report: emails replaced, so evidence never carries personal data."""
    return pii.EMAIL_RE.sub("<email>", name.decode("utf-8", "replace"))[:120]


def _redis_values(client: Any, *, limit: int) -> tuple[list[tuple[bytes, bytes]], bool]:
    """(key, raw bytes) for up to ``limit`` keys; lists and hashes are flattened (queues, unacked)."""
    items: list[tuple[bytes, bytes]] = []
    truncated = False
    for key in client.scan_iter(count=1000):
        if len(items) >= limit:
            truncated = True
            break
        kind = client.type(key)
        if kind == b"string":
            value = client.get(key) or b""
        elif kind == b"list":
            value = b"\n".join(client.lrange(key, 0, 10_000))
        elif kind == b"hash":
            value = b"\n".join(v for pair in client.hgetall(key).items() for v in pair)
        elif kind == b"set":
            value = b"\n".join(client.smembers(key))
        elif kind == b"zset":
            value = b"\n".join(client.zrange(key, 0, 10_000))
        else:
            value = b""
        items.append((key, value))
    return items, truncated


def _decoded(raw: bytes) -> bytes:
    """Celery messages carry their body base64-encoded inside JSON: decode it to scan it."""
    import base64
    import json

    out = [raw]
    for line in raw.split(b"\n"):
        try:
            message = json.loads(line)
        except ValueError:
            continue
        body = message.get("body") if isinstance(message, dict) else None
        if isinstance(body, str):
            try:
                out.append(base64.b64decode(body, validate=False))
            except ValueError:
                continue
    return b"\n".join(out)


def _foreign_subjects(items: list[tuple[bytes, bytes]], context: AuditContext) -> tuple[dict[str, str], int]:
    """Keys whose values name subjects homed outside this zone: {redacted key: home region}.

    The directory cache is skipped: it holds directory data (subject → home
    region, no personal data), which every region keeps for every subject.
    """
    from residency.cache import NAMESPACE
    from residency.login_keys import login_key

    directory_prefix = f"{context.region}:{NAMESPACE}".encode()
    items = [(key, value) for key, value in items if not key.startswith(directory_prefix)]
    user, login = str(DirectoryEntry.Kind.USER), str(DirectoryEntry.Kind.LOGIN)
    references: dict[bytes, set[tuple[str, str]]] = {}
    for key, value in items:
        blob = key + b"\n" + _decoded(value)
        refs: set[tuple[str, str]] = {(user, m.decode()) for m in _UUID_BYTES_RE.findall(blob)}
        refs |= {(login, m.decode()) for m in _LOGIN_KEY_RE.findall(blob)}
        refs |= {(login, login_key(m.decode("utf-8", "replace"))) for m in _EMAIL_BYTES_RE.findall(blob)}
        if refs:
            references[key] = refs
    wanted = {ref for refs in references.values() for ref in refs}
    homes: dict[tuple[str, str], str] = {}
    if wanted:
        keys_by_kind: dict[str, list[str]] = {}
        for ref_kind, ref_key in wanted:
            keys_by_kind.setdefault(ref_kind, []).append(ref_key)
        for ref_kind, ref_keys in keys_by_kind.items():
            rows = DirectoryEntry.objects.filter(kind=ref_kind, key__in=ref_keys).values_list(
                "key", "home_region"
            )
            for entry_key, entry_home in rows:
                homes[(ref_kind, entry_key)] = entry_home
    allowed = context.allowed_regions()
    foreign: dict[str, str] = {}
    for key, found in references.items():
        for ref in found:
            ref_home = homes.get(ref)
            if ref_home is not None and ref_home not in allowed:
                foreign[_redact(key)] = ref_home
    return foreign, len(wanted)


@audit_check(
    id="RES-05",
    title="Caches and queues hold no other zone's data",
    description=(
        "The region's cache and its queued background-task messages must not hold resident data of "
        "subjects homed in another zone. Every cached value and queued message is scanned for user ids, "
        "login keys and email addresses, which are looked up in the directory."
    ),
)
def check_cache_and_broker(context: AuditContext) -> CheckResult:
    import redis as redis_lib

    evidence = Evidence()
    limit = int(getattr(settings, "AUDIT_REDIS_SCAN_LIMIT", 200_000))
    sources = {"cache": settings.REDIS_URL, "broker": settings.CELERY_BROKER_URL}
    findings = 0
    incomplete = False
    for label, url in sources.items():
        if not url or not str(url).startswith(("redis://", "rediss://")):
            scheme = "unset" if not url else str(url).split(":")[0]
            evidence.notes.append(
                f"{label}: not a Redis server ({scheme}); nothing to scan outside this process"
            )
            incomplete = True
            continue
        client = redis_lib.Redis.from_url(str(url), socket_timeout=5)
        items, truncated = _redis_values(client, limit=limit)
        evidence.config[f"{label}.redis_db"] = str(url).rsplit("/", 1)[-1]
        evidence.counts[f"{label}.keys_scanned"] = len(items)
        if truncated:
            incomplete = True
            evidence.notes.append(f"{label}: stopped after {limit} keys (AUDIT_REDIS_SCAN_LIMIT)")
        foreign, references = _foreign_subjects(items, context)
        evidence.counts[f"{label}.subject_references"] = references
        evidence.counts[f"{label}.other_zone_entries"] = len(foreign)
        if foreign:
            evidence.samples[label] = [f"{k} -> {home}" for k, home in list(foreign.items())[:SAMPLE_SIZE]]
            findings += len(foreign)
    status = verdict(findings, incomplete=incomplete)
    summary = {
        Status.PASS: "No cached value or queued message holds data of a subject homed in another zone.",
        Status.INCOMPLETE: (
            "Nothing from another zone was found, but part of the cache or queue could not be scanned."
        ),
    }.get(
        status,
        f"{findings} cached value(s) or queued message(s) hold data of subjects homed in another zone.",
    )
    return CheckResult(status, findings, summary, evidence)


# --- 6. Stored events and logs hold no personal data ------------------------------------


def _scan_log_files(paths: Iterable[str], evidence: Evidence, context: AuditContext) -> tuple[int, bool]:
    import glob

    findings = 0
    incomplete = False
    files = sorted({f for pattern in paths for f in glob.glob(pattern)})
    if not files:
        evidence.notes.append(
            "no application log file configured or found (AUDIT_LOG_PATHS); logs shipped elsewhere "
            "must be audited there"
        )
        return 0, True
    for path in files:
        context.say(f"  scanning log {path}")
        hits: list[str] = []
        lines = 0
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                for number, line in enumerate(handle, start=1):
                    lines += 1
                    if pii.personal_data_in(line):
                        hits.append(f"{path}:{number}")
        except OSError as exc:
            evidence.notes.append(f"{path}: unreadable ({exc.strerror})")
            incomplete = True
            continue
        evidence.counts[f"log:{path}.lines"] = lines
        if hits:
            evidence.counts[f"log:{path}.lines_with_personal_data"] = len(hits)
            evidence.samples[f"log:{path}"] = hits[:SAMPLE_SIZE]
            findings += len(hits)
    return findings, incomplete


@audit_check(
    id="RES-06",
    title="Logs and recorded incidents hold no personal data",
    description=(
        "The stored wrong-region events and the application's log output must not contain emails, "
        "names or IP addresses in clear. Every stored event and every log line is scanned."
    ),
)
def check_events_and_logs(context: AuditContext) -> CheckResult:
    evidence = Evidence(config={"AUDIT_LOG_PATHS": list(context.log_paths)})
    findings = 0
    for store in event_stores(context):
        findings += _json_store_scan(evidence, **store)
    log_findings, incomplete = _scan_log_files(context.log_paths, evidence, context)
    findings += log_findings
    status = verdict(findings, incomplete=incomplete)
    summary = {
        Status.PASS: "No stored event or log line holds personal data in clear.",
        Status.INCOMPLETE: (
            "No personal data found in stored events; application logs were not available here."
        ),
    }.get(status, f"{findings} stored event(s) or log line(s) hold personal data in clear.")
    return CheckResult(status, findings, summary, evidence)


def event_stores(context: AuditContext) -> list[dict[str, Any]]:
    """Tables of recorded incidents whose rows must hold no personal data.

    A model opts in with ``audit_personal_data_free = True``; every column of
    every row is scanned.
    """
    return [
        {
            "label": model._meta.label_lower,
            "table": model._meta.db_table,
            "column": None,
            "allowed_keys": None,
        }
        for model in _concrete_models(context)
        if getattr(model, "audit_personal_data_free", False)
    ]


# --- 7. Wrong-region requests were redirected or refused, never served -------------------


@audit_check(
    id="RES-07",
    title="Requests that reached the wrong region were never served there",
    description=(
        "Every recorded request that reached this region for a subject homed elsewhere was redirected "
        "to a region of the subject's zone or refused (503), never served here and never sent out of "
        "the zone."
    ),
)
def check_wrong_region_outcomes(context: AuditContext) -> CheckResult:
    from residency.models import ViolationEvent

    registry = get_registry()
    evidence = Evidence()
    table = ViolationEvent._meta.db_table
    total = _fetch(f"SELECT count(*), count(*) FILTER (WHERE decision = 'redirected') FROM {table}")[0]  # noqa: S608
    evidence.counts["events"] = int(total[0])
    evidence.counts["events.redirected"] = int(total[1])
    # Served, or a status that is neither a redirect nor a refusal.
    served_sql = (
        f"SELECT id::text FROM {table} WHERE decision NOT IN ('redirected', 'unavailable') "  # noqa: S608
        "OR (decision = 'redirected' AND status NOT IN (301, 302, 303, 307, 308)) "
        "OR (decision = 'unavailable' AND status <> 503) ORDER BY occurred_at"
    )
    served = [r[0] for r in _fetch(served_sql)]
    evidence.queries.append(served_sql)
    # Redirects whose target is not in the home region's zone.
    pairs_sql = (
        f"SELECT home_region, target_region, count(*) FROM {table} "  # noqa: S608
        "WHERE decision = 'redirected' GROUP BY 1, 2"
    )
    evidence.queries.append(pairs_sql)
    out_of_zone = 0
    for home, target, count in _fetch(pairs_sql):
        home_zone = registry.regions[home].zone if home in registry.regions else None
        target_zone = registry.regions[target].zone if target in registry.regions else None
        if home_zone is None or target_zone != home_zone:
            out_of_zone += int(count)
            evidence.notes.append(
                f"{count} request(s) for a subject homed in {home} were sent to {target or 'nowhere'}"
            )
    evidence.counts["events.served_or_unexpected_status"] = len(served)
    evidence.counts["events.redirected_out_of_zone"] = out_of_zone
    if served:
        evidence.samples["served"] = served[:SAMPLE_SIZE]
    findings = len(served) + out_of_zone
    status = verdict(findings)
    summary = (
        f"All {total[0]} recorded wrong-region request(s) were redirected within the zone or refused."
        if status is Status.PASS
        else f"{findings} wrong-region request(s) were served here or sent out of the zone."
    )
    return CheckResult(status, findings, summary, evidence)


# --- 8. The infrastructure configuration keeps the region in its zone -------------------

_TF_COMMENTS = re.compile(r"/\*.*?\*/|#[^\n]*|//[^\n]*", re.S)
# Documentation strings (variable descriptions, e.g. "saas-eu-west-1-standby") configure nothing.
_TF_DESCRIPTION = re.compile(r'\bdescription\s*=\s*"(?:[^"\\]|\\.)*"')
_TF_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _terraform_literals(directory: Any) -> dict[str, set[str]]:
    """Cloud region names written literally in ``.tf`` files under ``directory`` (comments ignored)."""
    from residency.terraform_plan import CLOUD_REGION_RE

    found: dict[str, set[str]] = {}
    for path in sorted(directory.rglob("*.tf")):
        if ".terraform" in path.parts:
            continue
        text = _TF_COMMENTS.sub("", path.read_text(encoding="utf-8", errors="replace"))
        text = _TF_DESCRIPTION.sub("", text)
        regions = {
            match for literal in _TF_STRING.findall(text) for match in CLOUD_REGION_RE.findall(literal)
        }
        if regions:
            found[str(path.relative_to(directory))] = regions
    return found


@audit_check(
    id="RES-08",
    title="The infrastructure keeps the region's data in its zone",
    description=(
        "Every cloud resource of this region is placed in the region's cloud region (or an allowed "
        "region of its zone), and database replicas, backups and snapshot copies never leave the zone. "
        "With a Terraform plan (terraform show -json) every planned resource and every value naming a "
        "cloud region is checked; otherwise the configuration files are read: the region's stack must "
        "take its cloud regions from the registry, never from a literal outside the zone."
    ),
)
def check_terraform(context: AuditContext) -> CheckResult:
    from pathlib import Path

    from residency.terraform_plan import check_region_plan, load_json

    registry = get_registry()
    region = registry.region(context.region)
    allowed_cloud = {r.cloud_region for r in registry.regions_in_zone(region.zone)}
    evidence = Evidence(
        config={"cloud_region": region.cloud_region, "allowed_cloud_regions": sorted(allowed_cloud)}
    )
    if context.terraform_plan:
        doc = load_json(context.terraform_plan)
        report = check_region_plan(doc, registry=registry, region_code=context.region)
        evidence.config["plan"] = str(context.terraform_plan)
        evidence.counts["resources"] = len(report.resources)
        evidence.counts["copies_and_replicas"] = len(report.copies)
        for copy in report.copies[:SAMPLE_SIZE]:
            evidence.notes.append(
                f"{copy.kind} {copy.address}: {', '.join(copy.sources)} -> {copy.destination}"
            )
        for finding in report.findings:
            evidence.notes.append(f"[{finding.rule}] {finding.address}: {finding.message}")
        if report.findings:
            evidence.samples["resources"] = [f.address for f in report.findings[:SAMPLE_SIZE]]
        findings = len(report.findings)
        status = verdict(findings)
        summary = (
            f"All {len(report.resources)} planned resources and {len(report.copies)} copies "
            f"stay in zone {region.zone}."
            if status is Status.PASS
            else f"{findings} planned resource(s) or value(s) reach outside zone {region.zone}."
        )
        return CheckResult(status, findings, summary, evidence)

    directory = Path(getattr(settings, "AUDIT_TERRAFORM_DIR", "") or Path(settings.BASE_DIR) / "terraform")
    evidence.config["terraform_dir"] = str(directory)
    stacks = [
        directory / "modules" / "region",
        directory / "modules" / "standby",
        directory / "envs" / "region",
    ]
    if not all(path.is_dir() for path in stacks):
        evidence.notes.append(
            f"no Terraform configuration at {directory}; give --terraform-plan to check a plan"
        )
        return CheckResult(
            Status.INCOMPLETE,
            0,
            "The infrastructure configuration was not available to this process.",
            evidence,
        )
    outside: list[str] = []
    for stack in stacks:
        for path, regions in _terraform_literals(stack).items():
            for cloud in sorted(regions):
                evidence.notes.append(f"{stack.name}/{path} names {cloud}")
                if cloud not in allowed_cloud:
                    outside.append(f"{stack.name}/{path}: {cloud}")
    registry_read = "yamldecode" in " ".join(
        p.read_text(errors="replace") for p in (directory / "modules" / "registry").rglob("*.tf")
    )
    evidence.counts["files_read"] = sum(len(list(s.rglob("*.tf"))) for s in stacks)
    evidence.config["registry_read_by_terraform"] = registry_read
    findings = len(outside) + (0 if registry_read else 1)
    if outside:
        evidence.samples["literal_regions_outside_zone"] = outside[:SAMPLE_SIZE]
    if not registry_read:
        evidence.notes.append("the Terraform registry module does not read the region registry (yamldecode)")
    status = verdict(findings)
    summary = (
        "The region's Terraform takes every cloud region from the registry; "
        "nothing names a region outside the zone."
        if status is Status.PASS
        else f"{findings} place(s) in the region's Terraform configuration reach outside zone {region.zone}."
    )
    return CheckResult(status, findings, summary, evidence)
