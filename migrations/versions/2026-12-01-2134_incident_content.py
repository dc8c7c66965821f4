"""incident pages content: updates, FAQ, guidance

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 21:34:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INCIDENT_TEXT = ("happened", "happened_cy", "doing", "doing_cy", "advice", "advice_cy")
INCIDENT_SHORT = ("helpline_hours", "helpline_hours_cy")


def upgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        for name in INCIDENT_TEXT:
            batch_op.add_column(sa.Column(name, sa.Text(), nullable=False, server_default=""))
        for name in INCIDENT_SHORT:
            batch_op.add_column(sa.Column(name, sa.String(length=200), nullable=False, server_default=""))
        batch_op.add_column(sa.Column('published_at', sa.DateTime(timezone=True), nullable=True))
    # Defaults only fill the rows already there; the application always writes these columns.
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        for name in INCIDENT_TEXT + INCIDENT_SHORT:
            batch_op.alter_column(name, server_default=None)
    op.execute("UPDATE incidents SET published_at = COALESCE(discovered_at, created_at) WHERE published")

    with op.batch_alter_table('incident_updates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('number', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))
    # Number existing updates 1, 2, 3... per incident in the order they were published.
    op.execute(
        "UPDATE incident_updates SET updated_at = published_at, number = ("
        "SELECT count(*) FROM incident_updates AS earlier WHERE earlier.incident_id = incident_updates.incident_id"
        " AND (earlier.published_at < incident_updates.published_at OR (earlier.published_at ="
        " incident_updates.published_at AND earlier.id <= incident_updates.id)))")
    with op.batch_alter_table('incident_updates', schema=None) as batch_op:
        batch_op.alter_column('number', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('updated_at', existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_incident_updates_incident_id_number'),
                                          ['incident_id', 'number'])

    op.create_table('incident_questions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('question', sa.String(length=300), nullable=False),
    sa.Column('question_cy', sa.String(length=300), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('answer_cy', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_questions_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_questions')),
    sa.UniqueConstraint('incident_id', 'position', name=op.f('uq_incident_questions_incident_id_position'))
    )
    op.create_table('incident_guidance',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('guidance', sa.Text(), nullable=False),
    sa.Column('guidance_cy', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['category_id'], ['data_categories.id'], name=op.f('fk_incident_guidance_category_id_data_categories')),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_guidance_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_guidance')),
    sa.UniqueConstraint('incident_id', 'category_id', name=op.f('uq_incident_guidance_incident_id_category_id'))
    )


def downgrade() -> None:
    op.drop_table('incident_guidance')
    op.drop_table('incident_questions')
    with op.batch_alter_table('incident_updates', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_incident_updates_incident_id_number'), type_='unique')
        batch_op.drop_column('updated_at')
        batch_op.drop_column('number')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_column('published_at')
        for name in reversed(INCIDENT_TEXT + INCIDENT_SHORT):
            batch_op.drop_column(name)
