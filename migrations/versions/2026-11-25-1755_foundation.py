"""Foundation: branches (seeded), members, incidents, data categories (seeded), exposures, audit, staff

Revision ID: 0001
Revises:
Create Date: 2026-11-25 17:55:59.899103
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


BRANCHES = [
    ("avon-somerset", "Avon and Somerset", "england", "en"),
    ("bedfordshire", "Bedfordshire", "england", "en"),
    ("cambridgeshire", "Cambridgeshire", "england", "en"),
    ("cheshire", "Cheshire", "england", "en"),
    ("city-of-london", "City of London", "england", "en"),
    ("cleveland", "Cleveland", "england", "en"),
    ("cumbria", "Cumbria", "england", "en"),
    ("derbyshire", "Derbyshire", "england", "en"),
    ("devon-cornwall", "Devon and Cornwall", "england", "en"),
    ("dorset", "Dorset", "england", "en"),
    ("durham", "Durham", "england", "en"),
    ("dyfed-powys", "Dyfed-Powys", "wales", "cy"),
    ("essex", "Essex", "england", "en"),
    ("gloucestershire", "Gloucestershire", "england", "en"),
    ("greater-manchester", "Greater Manchester", "england", "en"),
    ("gwent", "Gwent", "wales", "cy"),
    ("hampshire", "Hampshire", "england", "en"),
    ("hertfordshire", "Hertfordshire", "england", "en"),
    ("humberside", "Humberside", "england", "en"),
    ("kent", "Kent", "england", "en"),
    ("lancashire", "Lancashire", "england", "en"),
    ("leicestershire", "Leicestershire", "england", "en"),
    ("lincolnshire", "Lincolnshire", "england", "en"),
    ("merseyside", "Merseyside", "england", "en"),
    ("metropolitan", "Metropolitan", "england", "en"),
    ("norfolk", "Norfolk", "england", "en"),
    ("north-wales", "North Wales", "wales", "cy"),
    ("north-yorkshire", "North Yorkshire", "england", "en"),
    ("northamptonshire", "Northamptonshire", "england", "en"),
    ("northumbria", "Northumbria", "england", "en"),
    ("nottinghamshire", "Nottinghamshire", "england", "en"),
    ("south-wales", "South Wales", "wales", "cy"),
    ("south-yorkshire", "South Yorkshire", "england", "en"),
    ("staffordshire", "Staffordshire", "england", "en"),
    ("suffolk", "Suffolk", "england", "en"),
    ("surrey", "Surrey", "england", "en"),
    ("sussex", "Sussex", "england", "en"),
    ("thames-valley", "Thames Valley", "england", "en"),
    ("warwickshire", "Warwickshire", "england", "en"),
    ("west-mercia", "West Mercia", "england", "en"),
    ("west-midlands", "West Midlands", "england", "en"),
    ("west-yorkshire", "West Yorkshire", "england", "en"),
    ("wiltshire", "Wiltshire", "england", "en"),
]


# Guidance tells a member what to do about each kind of exposed data.
CATEGORIES = [
    (
        "police_email", "Police email address", "Cyfeiriad e-bost yr heddlu",
        "Expect targeted phishing. We will never ask for your password or send you a link to sign in. "
        "Check any message that claims to be from us on our Verify a message page, and report "
        "suspicious email to your force's IT security team.",
        "Disgwyliwch negeseuon gwe-rwydo wedi'u targedu. Ni fyddwn byth yn gofyn am eich cyfrinair nac yn "
        "anfon dolen i fewngofnodi. Gwiriwch unrhyw neges sy'n honni ei bod gennym ni ar ein tudalen Gwirio "
        "neges, a rhowch wybod am e-bost amheus i dîm diogelwch TG eich llu.",
    ),
    (
        "ni_number", "National Insurance number", "Rhif Yswiriant Gwladol",
        "Your NI number cannot be changed, but it cannot be used alone to take money. Check your HMRC "
        "personal tax account for employments you do not recognise, and be wary of calls asking you to "
        "confirm it.",
        "Ni ellir newid eich rhif Yswiriant Gwladol, ond ni ellir ei ddefnyddio ar ei ben ei hun i gymryd "
        "arian. Gwiriwch eich cyfrif treth personol CThEF am gyflogaeth nad ydych yn ei hadnabod, a byddwch "
        "yn wyliadwrus o alwadau sy'n gofyn i chi ei gadarnhau.",
    ),
    (
        "home_address", "Home address", "Cyfeiriad cartref",
        "Review your personal security with your force. Consider whether your address should be "
        "withheld from public registers, and report any unexpected visits or post.",
        "Adolygwch eich diogelwch personol gyda'ch llu. Ystyriwch a ddylid cadw eich cyfeiriad oddi ar "
        "gofrestrau cyhoeddus, a rhowch wybod am unrhyw ymweliadau neu bost annisgwyl.",
    ),
    (
        "date_of_birth", "Date of birth", "Dyddiad geni",
        "Your date of birth may be used to impersonate you. Be wary of anyone using it to prove who they "
        "are, and consider a free credit report to spot applications you did not make.",
        "Gellir defnyddio eich dyddiad geni i'ch dynwared. Byddwch yn wyliadwrus o unrhyw un sy'n ei "
        "ddefnyddio i brofi pwy ydyn nhw, ac ystyriwch adroddiad credyd am ddim i weld ceisiadau na "
        "wnaethoch chi.",
    ),
    (
        "card_details", "Payment card details", "Manylion cerdyn talu",
        "Ask your card issuer to cancel and replace the card used for hotel bookings with us, and check "
        "your statements for payments you do not recognise.",
        "Gofynnwch i gyhoeddwr eich cerdyn ganslo a disodli'r cerdyn a ddefnyddiwyd i archebu gwestai "
        "gyda ni, a gwiriwch eich cyfriflenni am daliadau nad ydych yn eu hadnabod.",
    ),
    (
        "bank_details", "Bank account details", "Manylion cyfrif banc",
        "Tell your bank that these details may have been exposed. Watch for unexpected direct debits and "
        "never move money because a caller tells you your account is at risk.",
        "Dywedwch wrth eich banc y gallai'r manylion hyn fod wedi'u datgelu. Cadwch lygad am ddebydau "
        "uniongyrchol annisgwyl a pheidiwch byth â symud arian oherwydd bod galwr yn dweud bod eich cyfrif "
        "mewn perygl.",
    ),
    (
        "phone_number", "Personal phone number", "Rhif ffôn personol",
        "Expect scam calls and texts. We will only call you back if you asked us to, and our agent will "
        "say the passphrase you chose first.",
        "Disgwyliwch alwadau a negeseuon testun twyllodrus. Byddwn ond yn eich ffonio'n ôl os gofynnoch "
        "i ni wneud hynny, a bydd ein hasiant yn dweud yr ymadrodd cyfrin a ddewisoch yn gyntaf.",
    ),
]


def upgrade() -> None:
    op.create_table('audit_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events')),
    sa.UniqueConstraint('hash', name=op.f('uq_audit_events_hash'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_action'), ['action'], unique=False)

    op.create_table('branches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('country', sa.String(length=16), nullable=False),
    sa.Column('default_language', sa.String(length=2), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_branches')),
    sa.UniqueConstraint('code', name=op.f('uq_branches_code'))
    )
    op.create_table('data_categories',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('name_cy', sa.String(length=100), nullable=False),
    sa.Column('guidance', sa.Text(), nullable=False),
    sa.Column('guidance_cy', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_categories')),
    sa.UniqueConstraint('code', name=op.f('uq_data_categories_code'))
    )
    op.create_table('incidents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('title_cy', sa.String(length=200), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('summary_cy', sa.Text(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('discovered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('published', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incidents')),
    sa.UniqueConstraint('code', name=op.f('uq_incidents_code'))
    )
    op.create_table('incident_updates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('title_cy', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('body_cy', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_updates_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_updates'))
    )
    with op.batch_alter_table('incident_updates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_updates_incident_id'), ['incident_id'], unique=False)

    op.create_table('members',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('membership_number', sa.String(length=32), nullable=False),
    sa.Column('first_name', sa.String(length=100), nullable=False),
    sa.Column('last_name', sa.String(length=100), nullable=False),
    sa.Column('rank', sa.String(length=50), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=False),
    sa.Column('preferred_language', sa.String(length=2), nullable=False),
    sa.Column('email_enc', sa.Text(), nullable=True),
    sa.Column('email_index', sa.String(length=64), nullable=True),
    sa.Column('phone_enc', sa.Text(), nullable=True),
    sa.Column('phone_index', sa.String(length=64), nullable=True),
    sa.Column('pii_key_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['branch_id'], ['branches.id'], name=op.f('fk_members_branch_id_branches')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_members')),
    sa.UniqueConstraint('membership_number', name=op.f('uq_members_membership_number'))
    )
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_members_branch_id'), ['branch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_members_email_index'), ['email_index'], unique=False)
        batch_op.create_index(batch_op.f('ix_members_phone_index'), ['phone_index'], unique=False)

    op.create_table('staff_users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('totp_secret_enc', sa.Text(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['branch_id'], ['branches.id'], name=op.f('fk_staff_users_branch_id_branches')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_users')),
    sa.UniqueConstraint('email', name=op.f('uq_staff_users_email'))
    )
    op.create_table('exposures',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['category_id'], ['data_categories.id'], name=op.f('fk_exposures_category_id_data_categories')),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_exposures_incident_id_incidents')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_exposures_member_id_members'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exposures')),
    sa.UniqueConstraint('member_id', 'incident_id', 'category_id', name=op.f('uq_exposures_member_id_incident_id_category_id'))
    )
    with op.batch_alter_table('exposures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exposures_incident_id'), ['incident_id'], unique=False)


    branches = sa.table("branches", sa.column("code"), sa.column("name"), sa.column("country"),
                        sa.column("default_language"))
    op.bulk_insert(branches, [{"code": c, "name": n, "country": co, "default_language": lang}
                              for c, n, co, lang in BRANCHES])
    categories = sa.table("data_categories", sa.column("code"), sa.column("name"), sa.column("name_cy"),
                          sa.column("guidance"), sa.column("guidance_cy"))
    op.bulk_insert(categories, [{"code": c, "name": n, "name_cy": ncy, "guidance": g, "guidance_cy": gcy}
                                for c, n, ncy, g, gcy in CATEGORIES])


def downgrade() -> None:
    with op.batch_alter_table('exposures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exposures_incident_id'))

    op.drop_table('exposures')
    op.drop_table('staff_users')
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_members_phone_index'))
        batch_op.drop_index(batch_op.f('ix_members_email_index'))
        batch_op.drop_index(batch_op.f('ix_members_branch_id'))

    op.drop_table('members')
    with op.batch_alter_table('incident_updates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_updates_incident_id'))

    op.drop_table('incident_updates')
    op.drop_table('incidents')
    op.drop_table('data_categories')
    op.drop_table('branches')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_action'))

    op.drop_table('audit_events')
