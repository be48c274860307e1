"""People, roles and an append-only audit trail (issue 14)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 10:00:00

New tables ``users`` (who signed in: OIDC issuer + subject, e-mail, name, active, last seen), ``user_roles`` (a
role everywhere or in one project) and ``api_tokens`` (hashes only, for the HTTP API). ``audit_events`` gains the
acting user's id, the outcome (``ok``, ``refused``, ``failed``; existing rows ``ok``) and plain-integer project,
document and model-version ids (no foreign keys: the trail outlives what it names), and becomes append-only:

- SQLite: ``BEFORE UPDATE`` / ``BEFORE DELETE`` triggers raise, for every connection.
- PostgreSQL: the same as a row trigger (any role but the table owner, who can drop it, is refused), and
  ``UPDATE, DELETE, TRUNCATE`` on ``audit_events`` are revoked from ``PUBLIC`` and, when ``REPORTLENS_DB_APP_ROLE``
  names it, from the application's login role, which keeps ``SELECT, INSERT`` (README "People, roles and audit":
  migrations run as the owner role, the app as the app role).

Downgrade drops the triggers, the new columns and tables (the audit rows themselves stay); privileges revoked
stay revoked.
"""

import os
import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE_ENV = "REPORTLENS_DB_APP_ROLE"
REFUSAL = "audit_events is append-only: audit rows cannot be changed or deleted"
_NEW_COLUMNS = ("actor_user_id", "outcome", "project_id", "document_id", "model_version_id")


def _app_role() -> str | None:
    role = os.environ.get(APP_ROLE_ENV, "").strip()
    if role and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]{0,62}", role):
        raise RuntimeError(f"{APP_ROLE_ENV}={role!r} is not a plain PostgreSQL role name (letters, digits, _).")
    return role or None


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("actor_user_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("outcome", sa.String(length=20), nullable=False, server_default="ok"))
        batch_op.add_column(sa.Column("project_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("document_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("model_version_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_audit_events_project_id_at", ["project_id", "at"], unique=False)
        batch_op.create_index("ix_audit_events_actor", ["actor"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("email", sa.String(length=300), nullable=True),
        sa.Column("display_name", sa.String(length=300), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("issuer", "subject", name=op.f("uq_users_issuer_subject")),
    )
    op.create_index("ix_users_email", "users", ["email"], unique=False)
    op.create_table(
        "user_roles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_user_roles_project_id_projects"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_user_roles_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_roles")),
    )
    op.create_index("ix_user_roles_user_id", "user_roles", ["user_id"], unique=False)
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_api_tokens_created_by_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_api_tokens_project_id_projects"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index("ix_api_tokens_project_id", "api_tokens", ["project_id"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        _protect_postgresql()
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                       f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END")


def _protect_postgresql() -> None:
    op.execute(f"""CREATE OR REPLACE FUNCTION reportlens_audit_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$ BEGIN
            RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'insufficient_privilege';
        END $$""")
    op.execute("CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
               "FOR EACH ROW EXECUTE FUNCTION reportlens_audit_append_only()")
    op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM PUBLIC")
    role = _app_role()
    if role is not None:
        exists = op.get_bind().execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
        if exists is None:
            raise RuntimeError(f"{APP_ROLE_ENV}={role!r}: no such PostgreSQL role; create it (CREATE ROLE {role} "
                               "LOGIN) before migrating, or unset the variable.")
        op.execute(f'GRANT SELECT, INSERT ON audit_events TO "{role}"')
        op.execute(f'GRANT USAGE, SELECT ON SEQUENCE audit_events_id_seq TO "{role}"')
        op.execute(f'REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM "{role}"')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS reportlens_audit_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
    op.drop_index("ix_api_tokens_project_id", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_index("ix_user_roles_user_id", table_name="user_roles")
    op.drop_table("user_roles")
    op.drop_index("ix_users_email", table_name="users")
    op.drop_table("users")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_actor")
        batch_op.drop_index("ix_audit_events_project_id_at")
        for name in reversed(_NEW_COLUMNS):
            batch_op.drop_column(name)
