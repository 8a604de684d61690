"""One open plan per case, held by the database: a partial unique index on
recovery_plans(case_id) over the plans not completed or withdrawn. Before, only
services/plans.start_plan checked it, so two starts racing could both insert a draft.

The upgrade refuses, naming the cases, if a database already holds a case with two open
plans: someone must withdraw one first (the plan page's "Withdraw", with a reason).

Revision ID: 5e1b7a2c9d40
Revises: cf59055d5c86
Create Date: 2026-11-27 10:45:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "5e1b7a2c9d40"
down_revision = "cf59055d5c86"
branch_labels = None
depends_on = None

OPEN = "status NOT IN ('completed', 'withdrawn')"


def upgrade():
    duplicates = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT case_id FROM recovery_plans "
                "WHERE status NOT IN ('completed', 'withdrawn') "
                "GROUP BY case_id HAVING COUNT(*) > 1 ORDER BY case_id"
            )
        )
        .scalars()
        .all()
    )
    if duplicates:
        raise RuntimeError(
            "These cases have more than one open plan: "
            + ", ".join(str(case_id) for case_id in duplicates)
            + ". Withdraw all but one of each (with a reason), then upgrade again."
        )
    op.create_index(
        "uq_recovery_plans_one_open_per_case",
        "recovery_plans",
        ["case_id"],
        unique=True,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )


def downgrade():
    op.drop_index("uq_recovery_plans_one_open_per_case", table_name="recovery_plans")
