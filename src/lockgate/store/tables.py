"""The schema, defined once for SQLite and PostgreSQL (migrations mirror it).

Conventions: integer surrogate keys; objects users name have a unique ``key`` within their
parent; every mutable row has a ``version`` used for optimistic concurrency; timestamps
are ISO 8601 UTC strings (``2026-11-25T10:00:00.000000Z``) so that they hash and compare the
same on both databases; structured fields are JSON.
"""

from __future__ import annotations

import secrets

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

__all__ = ["MAX_INTEGER", "metadata"]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

TS = String(32)
MAX_INTEGER = 2**31 - 1
"""The largest value an ``Integer`` column holds on every backend (PostgreSQL's int4)."""

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(128), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("created_by", String(200), nullable=False),
    # The project's posture table (lockgate.policy.postures); NULL: the defaults.
    Column("posture", JSON, nullable=True),
    Column("posture_version", Integer, nullable=False, default=1, server_default="1"),
    # The project's overrides of the tool tier policy (lockgate.engine.tools); NULL: none.
    Column("tool_policy", JSON, nullable=True),
    Column("tool_policy_version", Integer, nullable=False, default=1, server_default="1"),
)

environments = Table(
    "environments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(128), nullable=False),
    Column("name", String(200), nullable=False),
    Column("position", Integer, nullable=False),
    Column("protected", Boolean, nullable=False, default=False),
    # A development environment: the postures' "development" class (unless protected).
    Column("development", Boolean, nullable=False, default=False, server_default=false()),
    Column("version", Integer, nullable=False, default=1),
    # Version of the environment's snapshot: bumped by every change to anything in it.
    Column("snapshot_version", Integer, nullable=False, default=0),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("created_by", String(200), nullable=False),
    # Privacy settings ({"private_attributes": [...], "rules": {...}}; docs/privacy.md) and
    # the salt of hashed attributes (handed to server-side SDK keys only).
    Column("privacy", JSON, nullable=True),
    Column("privacy_salt", String(64), nullable=True, default=lambda: secrets.token_hex(32)),
    UniqueConstraint("project_id", "key"),
)

flags = Table(
    "flags",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(128), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("owner", String(200), nullable=False, default=""),
    Column("risk_tier", String(16), nullable=False),
    Column("lifecycle", String(16), nullable=False),
    Column("tags", JSON, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("variations", JSON, nullable=False),
    Column("client_visible", Boolean, nullable=False, default=False),
    Column("archived", Boolean, nullable=False, default=False),
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("created_by", String(200), nullable=False),
    # The kind of generated behavior (ui_path, backend_workflow, model_route, ...).
    Column("behavior_kind", String(32), nullable=True),
    # The applied contract's rules, checked by every later configuration write.
    Column("contract", JSON, nullable=True),
    UniqueConstraint("project_id", "key"),
)

# Every contract applied to a behavior: its source, hash and the rules it set.
contract_versions = Table(
    "contract_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("flag_id", Integer, ForeignKey("flags.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("source", Text, nullable=False),
    Column("filename", String(300), nullable=False),
    Column("rules", JSON, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("audit_seq", Integer, nullable=True),
    UniqueConstraint("flag_id", "version"),
)

# The per-environment configuration of a flag, its current state and its history.
flag_configs = Table(
    "flag_configs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("flag_id", Integer, ForeignKey("flags.id", ondelete="CASCADE"), nullable=False),
    Column(
        "environment_id", Integer, ForeignKey("environments.id", ondelete="CASCADE"), nullable=False
    ),
    Column("version", Integer, nullable=False),
    Column("config", JSON, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("updated_by", String(200), nullable=False),
    UniqueConstraint("flag_id", "environment_id"),
)

flag_config_versions = Table(
    "flag_config_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("flag_id", Integer, ForeignKey("flags.id", ondelete="CASCADE"), nullable=False),
    Column(
        "environment_id", Integer, ForeignKey("environments.id", ondelete="CASCADE"), nullable=False
    ),
    Column("version", Integer, nullable=False),
    Column("config", JSON, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("audit_seq", Integer, nullable=True),
    UniqueConstraint("flag_id", "environment_id", "version"),
)

segments = Table(
    "segments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(128), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("attribute", String(128), nullable=False, default="key"),
    Column("included", JSON, nullable=False),
    Column("excluded", JSON, nullable=False),
    Column("rules", JSON, nullable=False),
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("created_by", String(200), nullable=False),
    UniqueConstraint("project_id", "key"),
)

# The tools a project's behaviors may call, with their risk class (docs/agents.md).
tools = Table(
    "tools",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(128), nullable=False),
    Column("risk", String(16), nullable=False),
    Column("description", Text, nullable=False, default=""),
    # Audiences denied the tool: [{"id", "clauses", "description"}]; no clauses: everyone.
    Column("deny", JSON, nullable=False),
    Column("budget", JSON, nullable=True),
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("project_id", "key"),
)

# One row per environment change, for streaming replay (Last-Event-ID) and diagnostics.
environment_changes = Table(
    "environment_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "environment_id", Integer, ForeignKey("environments.id", ondelete="CASCADE"), nullable=False
    ),
    Column("snapshot_version", Integer, nullable=False),
    Column("flags", JSON, nullable=False),
    Column("segments", JSON, nullable=False),
    Column("created_at", TS, nullable=False),
    UniqueConstraint("environment_id", "snapshot_version"),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(128), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False, default=""),
    # Service accounts (automation, agents) have no password and log in only by token.
    Column("kind", String(16), nullable=False, default="human"),
    Column("password_hash", Text, nullable=True),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("created_by", String(200), nullable=False),
)

role_grants = Table(
    "role_grants",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    # NULL: the whole project; otherwise this environment only.
    Column(
        "environment_id", Integer, ForeignKey("environments.id", ondelete="CASCADE"), nullable=True
    ),
    Column("role", String(16), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(200), nullable=False),
    UniqueConstraint("user_id", "project_id", "environment_id"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("prefix", String(32), nullable=False, unique=True),
    Column("secret_hash", String(128), nullable=False),
    # Optional narrowing: one project, and at most this role.
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=True),
    Column("max_role", String(16), nullable=True),
    # standard | automation (CI and coding agents: read, plan and propose; never approve)
    Column("kind", String(16), nullable=False, default="standard", server_default="standard"),
    Column("expires_at", TS, nullable=True),
    Column("revoked_at", TS, nullable=True),
    Column("last_used_at", TS, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(200), nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("secret_hash", String(128), nullable=False, unique=True),
    Column("csrf_hash", String(64), nullable=False),  # SHA-256 hex of the CSRF token
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("revoked_at", TS, nullable=True),
)

sdk_keys = Table(
    "sdk_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "environment_id", Integer, ForeignKey("environments.id", ondelete="CASCADE"), nullable=False
    ),
    Column("kind", String(16), nullable=False),  # server | client
    Column("name", String(200), nullable=False),
    Column("prefix", String(32), nullable=False, unique=True),
    Column("secret_hash", String(128), nullable=False),
    Column("revoked_at", TS, nullable=True),
    Column("last_used_at", TS, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(200), nullable=False),
)

# Append-only, hash-chained (lockgate.store.audit). Triggers refuse UPDATE and DELETE.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("id", String(36), nullable=False, unique=True),
    Column("ts", TS, nullable=False),
    Column("action", String(64), nullable=False),
    Column("actor_type", String(16), nullable=False),
    Column("actor_id", String(64), nullable=False),
    Column("actor_name", String(200), nullable=False),
    Column("source", String(16), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("project", String(128), nullable=True),
    Column("environment", String(128), nullable=True),
    Column("object_type", String(32), nullable=False),
    Column("object_key", String(200), nullable=False),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
    Column("changes", JSON, nullable=False),
    Column("reason", Text, nullable=False),
    Column("risk_tier", String(16), nullable=True),
    Column("evidence", JSON, nullable=False),
    Column("refs", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_log_project_ts", "project", "ts"),
    Index("ix_audit_log_object", "object_type", "object_key"),
)

# The chain head, updated with every append: serialises appends and records the length.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("ts", TS, nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("signature", String(128), nullable=False),
)

# The public keys that signed checkpoints, recorded when first used (append-only): the
# verifier checks stored checkpoints with them when it is given no key of its own.
audit_signing_keys = Table(
    "audit_signing_keys",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("public_key_pem", Text, nullable=False),
    Column("added_at", TS, nullable=False),
)

# Aggregated evaluation counts reported by SDKs: the decision log's statistics.
evaluation_counts = Table(
    "evaluation_counts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "environment_id",
        Integer,
        ForeignKey("environments.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("flag", String(128), nullable=False),
    Column("variation", String(128), nullable=True),
    Column("reason", String(32), nullable=False),
    Column("window_start", TS, nullable=False),
    Column("window_end", TS, nullable=False),
    Column("count", Integer, nullable=False),
    Column("sdk", String(200), nullable=False),
    Column("received_at", TS, nullable=False),
    Index("ix_evaluation_counts_env_flag_window", "environment_id", "flag", "window_start"),
)

# The same counts summed per hour (``hour``: the first 13 characters of the window's start,
# ``2026-12-06T03``), added in the transaction that stores them: what the dashboard charts
# and totals read, a bounded number of rows however many SDK instances report.
# ``variation`` ``""``: the caller's default was served (``NULL`` in evaluation_counts).
evaluation_hours = Table(
    "evaluation_hours",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "environment_id", Integer, ForeignKey("environments.id", ondelete="CASCADE"), nullable=False
    ),
    Column("flag", String(128), nullable=False),
    Column("hour", String(13), nullable=False),
    Column("variation", String(128), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("count", BigInteger, nullable=False),
    UniqueConstraint("environment_id", "flag", "hour", "variation", "reason"),
)

# Change requests: an exact planned change (lockgate.policy.changes.Change) and its hash,
# waiting for the approvals its posture requires.
change_requests = Table(
    "change_requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    # The environments whose approvers may decide it (JSON list of ids; empty: project-wide).
    Column("environment_ids", JSON, nullable=False),
    Column("environment", String(128), nullable=True),
    Column("object_type", String(32), nullable=False),
    Column("object_key", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("change", JSON, nullable=False),
    Column("change_hash", String(64), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("approvals_required", Integer, nullable=False),
    Column("policy", JSON, nullable=False),
    Column("author_id", String(64), nullable=False),
    Column("author_user_id", Integer, nullable=True),
    Column("author_name", String(200), nullable=False),
    Column("title", String(200), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("apply_at", TS, nullable=True),
    Column("decided_at", TS, nullable=True),
    Column("applied_audit_seq", Integer, nullable=True),
    Column("version", Integer, nullable=False, default=1),
    Index("ix_change_requests_project_state", "project_id", "state"),
    Index("ix_change_requests_state_expires", "state", "expires_at"),
)

# Approvals, rejections and comments on a change request, per revision.
change_request_events = Table(
    "change_request_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "change_request_id",
        Integer,
        ForeignKey("change_requests.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("revision", Integer, nullable=False),
    Column("kind", String(16), nullable=False),  # approval | rejection | comment
    Column("user_id", Integer, nullable=True),
    Column("actor_id", String(64), nullable=False),
    Column("actor_name", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("change_hash", String(64), nullable=False),
    Column("created_at", TS, nullable=False),
    Index("ix_change_request_events_request", "change_request_id"),
)

# Runtime action approvals: an application in approval_required mode asks people before
# one concrete action (lockgate.control.governance.runtime).
runtime_approvals = Table(
    "runtime_approvals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column(
        "environment_id", Integer, ForeignKey("environments.id", ondelete="CASCADE"), nullable=False
    ),
    Column("behavior", String(128), nullable=False),
    Column("action", String(200), nullable=False),
    Column("summary", Text, nullable=False),
    # The context as asked, private attributes removed (their names are kept apart).
    Column("context", JSON, nullable=False),
    Column("private_attributes", JSON, nullable=False),
    # What the behavior served that context when it asked (variation, reason, rule id).
    Column("served", JSON, nullable=True),
    # Scoped to the environment: a retried request with the same key is the same request.
    Column("idempotency_key", String(200), nullable=True),
    Column(
        "state", String(16), nullable=False
    ),  # pending | approved | denied | timed_out | withdrawn
    Column("approvals_required", Integer, nullable=False),
    Column("policy", JSON, nullable=False),
    Column("requester_id", String(64), nullable=False),
    Column("requester_name", String(200), nullable=False),
    Column("timeout_seconds", Integer, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("decided_at", TS, nullable=True),
    Column("outcome_reason", Text, nullable=False, default=""),
    Column("version", Integer, nullable=False, default=1),
    UniqueConstraint("environment_id", "idempotency_key"),
    Index("ix_runtime_approvals_project_state", "project_id", "state"),
    Index("ix_runtime_approvals_state_expires", "state", "expires_at"),
)

# The approvals and denials given on a runtime approval request.
runtime_approval_events = Table(
    "runtime_approval_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "runtime_approval_id",
        Integer,
        ForeignKey("runtime_approvals.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("kind", String(16), nullable=False),  # approval | denial
    Column("user_id", Integer, nullable=True),
    Column("actor_id", String(64), nullable=False),
    Column("actor_name", String(200), nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Index("ix_runtime_approval_events_request", "runtime_approval_id"),
)

# Incident mode: while ``state`` is ``active`` the behaviors in ``scope`` serve their fallback
# and expansions in scope are refused. ``covered``: the flag keys it put under incident.
incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column(
        "environment_id", Integer, ForeignKey("environments.id", ondelete="CASCADE"), nullable=False
    ),
    Column("scope", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("covered", JSON, nullable=False),
    Column("started_by", String(200), nullable=False),
    Column("started_at", TS, nullable=False),
    Column("ended_by", String(200), nullable=True),
    Column("ended_at", TS, nullable=True),
    Column("end_reason", Text, nullable=True),
    Index("ix_incidents_environment_state", "environment_id", "state"),
)

# Guardrail signals: pre-aggregated summaries of tracked metrics, one row per environment x
# behavior x variation x metric x cohort x bucket. SDKs and the ingestion API add into a row
# (count, sum, sum of squares); ``exposures`` counts the evaluations that served ``variation``
# of ``flag`` in the bucket (rows with ``metric`` ``$exposure`` carry exposures only).
# ``cohort`` scopes a row to one cohort (for example an account key) for cohort-scoped
# limits; ``""`` is the whole population. ``bucket`` is the bucket's start in Unix seconds,
# ``resolution`` its length in seconds (60: minute rows; 3600: hour rows rolled up from
# minutes after the retention window).
metric_summaries = Table(
    "metric_summaries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "environment_id", Integer, ForeignKey("environments.id", ondelete="CASCADE"), nullable=False
    ),
    Column("flag", String(128), nullable=False),
    Column("variation", String(128), nullable=False),
    Column("metric", String(128), nullable=False),
    Column("cohort", String(200), nullable=False),
    Column("resolution", Integer, nullable=False),
    Column("bucket", Integer, nullable=False),
    Column("count", Integer, nullable=False),
    Column("sum", Float, nullable=False),
    Column("sum_sq", Float, nullable=False),
    Column("exposures", Integer, nullable=False),
    UniqueConstraint(
        "environment_id",
        "flag",
        "metric",
        "variation",
        "cohort",
        "resolution",
        "bucket",
        name="uq_metric_summaries_row",
    ),
    Index("ix_metric_summaries_environment_id_bucket", "environment_id", "bucket"),
)

# Webhook subscriptions of a project (lockgate.control.evidence.webhooks). ``secret`` signs
# every delivery (Standard Webhooks); after a rotation ``previous_secret`` signs too, until
# ``previous_secret_expires_at``. Both are stored as issued: they must be usable to sign.
webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(128), nullable=False),
    Column("description", Text, nullable=False),
    Column("url", String(2000), nullable=False),
    Column("event_types", JSON, nullable=False),
    Column("environments", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", Text, nullable=False),
    Column("secret", String(200), nullable=False),
    Column("previous_secret", String(200), nullable=True),
    Column("previous_secret_expires_at", TS, nullable=True),
    Column("version", Integer, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("created_by", String(200), nullable=False),
    UniqueConstraint("project_id", "key"),
)

# What each subscription receives: one row per event type x environment ("*": any), so that
# the outbox insert on the write path matches subscriptions with one indexed lookup.
webhook_routes = Table(
    "webhook_routes",
    metadata,
    Column(
        "subscription_id",
        Integer,
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("event_type", String(64), primary_key=True),
    Column("environment", String(128), primary_key=True),
)

# The durable outbox: one row per event x subscription, written in the change's transaction
# and sent by the delivery job. ``audit_seq`` points at the audit entry the payload is built
# from; events emitted without an audit entry keep their payload's data in ``data``.
# ``lease_until``: a sender claimed the row until then (no other replica sends it meanwhile).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "subscription_id",
        Integer,
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("event_id", String(64), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("audit_seq", Integer, nullable=True),
    Column("data", JSON, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("state", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", TS, nullable=False),
    Column("lease_until", TS, nullable=True),
    Column("last_attempt_at", TS, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=False),
    Column("finished_at", TS, nullable=True),
    Index("ix_webhook_deliveries_subscription_id_state_id", "subscription_id", "state", "id"),
    Index("ix_webhook_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
)

decision_records = Table(
    "decision_records",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "environment_id",
        Integer,
        ForeignKey("environments.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("kind", String(32), nullable=False),
    Column("flag", String(128), nullable=False),
    Column("variation", String(128), nullable=True),
    Column("reason", String(32), nullable=False),
    Column("rule", String(128), nullable=True),
    # The subject: the context's ``key`` as recorded (its hash when the key is hashed).
    Column("context_key", String(1024), nullable=True),
    # Redacted context (lockgate.privacy); ``redacted`` names the attributes left out.
    Column("context", JSON, nullable=False),
    Column("redacted", JSON, nullable=False),
    Column("detail", JSON, nullable=True),
    Column("decided_at", TS, nullable=False),
    Column("received_at", TS, nullable=False),
    Column("sdk", String(200), nullable=False),
    Index("ix_decision_records_env_decided", "environment_id", "decided_at", "id"),
    Index("ix_decision_records_env_subject", "environment_id", "context_key"),
    Index("ix_decision_records_kind_decided", "kind", "decided_at"),
)

# Guardrails: a metric of one behavior in one environment, how to judge it and what to do
# when it is breached (``definition``: lockgate.guardrails.model.GuardrailSpec's document).
# The background cycle stores its last evaluation here; ``breached_at`` is when its action
# last fired (it fires once per breach, not once per cycle).
guardrails = Table(
    "guardrails",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column(
        "environment_id", Integer, ForeignKey("environments.id", ondelete="CASCADE"), nullable=False
    ),
    Column("flag_id", Integer, ForeignKey("flags.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(128), nullable=False),
    Column("definition", JSON, nullable=False),
    Column("source", String(16), nullable=False),
    Column("state", String(24), nullable=False),
    Column("evaluation", JSON, nullable=True),
    Column("evaluated_at", TS, nullable=True),
    Column("breached_at", TS, nullable=True),
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("flag_id", "environment_id", "key"),
    Index("ix_guardrails_environment_id", "environment_id"),
)

# Staged rollouts: one plan per behavior and environment (``definition``: PlanSpec's
# document). ``stage`` is the stage in force (-1 before the first); ``status`` active,
# paused, awaiting_approval or completed. A plan row exists only once its creation was
# applied under the posture: the plan is approved, and covers the advances it allows.
rollout_plans = Table(
    "rollout_plans",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column(
        "environment_id", Integer, ForeignKey("environments.id", ondelete="CASCADE"), nullable=False
    ),
    Column("flag_id", Integer, ForeignKey("flags.id", ondelete="CASCADE"), nullable=False),
    Column("definition", JSON, nullable=False),
    Column("source", String(16), nullable=False),
    Column("stage", Integer, nullable=False),
    Column("status", String(24), nullable=False),
    Column("stage_started_at", TS, nullable=False),
    Column("require_approval", Boolean, nullable=False, default=False),
    Column("approval", JSON, nullable=False),
    Column("last_step", JSON, nullable=True),
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("flag_id", "environment_id"),
)

# Guardrail history: the last evaluation of each guardrail in each 15-minute slot
# (``slot``: its start in Unix seconds), written by the cycle with the state it stores —
# the state, the estimate and its interval, the line they are judged against
# (``boundary``), the regression's tolerated ratio to control (``scale``) and the metric
# per variation (``arms``: {variation: {"n", "value"}}). The dashboard charts it; the
# cycle deletes slots older than 35 days.
guardrail_results = Table(
    "guardrail_results",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "guardrail_id", Integer, ForeignKey("guardrails.id", ondelete="CASCADE"), nullable=False
    ),
    Column("slot", Integer, nullable=False),
    Column("evaluated_at", TS, nullable=False),
    Column("state", String(24), nullable=False),
    Column("estimate", Float, nullable=True),
    Column("low", Float, nullable=True),
    Column("high", Float, nullable=True),
    Column("threshold", Float, nullable=False),
    Column("boundary", Float, nullable=True),
    Column("scale", Float, nullable=True),
    Column("arms", JSON, nullable=False),
    UniqueConstraint("guardrail_id", "slot"),
)

# Time-boxed exclusions a per-cohort guardrail made: lifted by the same guardrail when its
# window resets (ADR 0010).
guardrail_exclusions = Table(
    "guardrail_exclusions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "guardrail_id", Integer, ForeignKey("guardrails.id", ondelete="CASCADE"), nullable=False
    ),
    Column("cohort", String(200), nullable=False),
    Column("exclusion", String(64), nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("created_at", TS, nullable=False),
    UniqueConstraint("guardrail_id", "exclusion"),
)

# Alert triggers: a secret URL that external monitoring (Alertmanager) calls to apply one
# reduction to one behavior in one environment. ``public_id`` names the trigger in its URL;
# only the SHA-256 of its secret is kept. ``action`` is ``kill``, ``fallback``, ``exclude``
# (with ``audience``) or ``pause_rollout``. Each firing (one alert episode: its
# fingerprint and start) is recorded once: a repeated notification applies nothing again.
alert_triggers = Table(
    "alert_triggers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("public_id", String(32), nullable=False, unique=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column(
        "environment_id", Integer, ForeignKey("environments.id", ondelete="CASCADE"), nullable=False
    ),
    Column("name", String(200), nullable=False),
    Column("flag", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("audience", String(2000), nullable=True),
    Column("description", Text, nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(200), nullable=False),
    Index("ix_alert_triggers_environment_id", "environment_id"),
)

alert_trigger_firings = Table(
    "alert_trigger_firings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "trigger_id", Integer, ForeignKey("alert_triggers.id", ondelete="CASCADE"), nullable=False
    ),
    Column("episode", String(300), nullable=False),
    Column("fired_at", TS, nullable=False),
    Column("outcome", JSON, nullable=False),
    UniqueConstraint("trigger_id", "episode", name="uq_alert_trigger_firings_episode"),
)

# A behavior's lifecycle marks: cleanup due (with the rule's evidence), why a permanent one
# stays, when it was archived. Its stage is derived (lockgate.lifecycle), not stored.
flag_lifecycle = Table(
    "flag_lifecycle",
    metadata,
    Column("flag_id", Integer, ForeignKey("flags.id", ondelete="CASCADE"), primary_key=True),
    Column("cleanup_due_at", TS, nullable=True),
    Column("cleanup_evidence", JSON, nullable=True),
    Column("permanent_reason", Text, nullable=True),
    Column("archived_at", TS, nullable=True),
    Column("updated_at", TS, nullable=False),
)

# The latest code-reference scan uploaded per repository and branch, and what it found.
code_ref_uploads = Table(
    "code_ref_uploads",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("repository", String(300), nullable=False),
    Column("branch", String(200), nullable=False),
    Column("commit", String(64), nullable=True),
    Column("files_scanned", Integer, nullable=False),
    Column("uploaded_at", TS, nullable=False),
    Column("uploaded_by", String(200), nullable=False),
    UniqueConstraint("project_id", "repository", "branch", name="uq_code_ref_uploads_branch"),
)

code_refs = Table(
    "code_refs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "upload_id", Integer, ForeignKey("code_ref_uploads.id", ondelete="CASCADE"), nullable=False
    ),
    Column("flag_key", String(128), nullable=False),
    Column("path", String(1000), nullable=False),
    Column("line", Integer, nullable=False),
    Column("snippet", Text, nullable=False),
    Index("ix_code_refs_upload_id_flag_key", "upload_id", "flag_key"),
)
