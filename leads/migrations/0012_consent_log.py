# The consent log is append-only: on PostgreSQL a trigger refuses every UPDATE and DELETE of
# leads_consentrecord, except the erasure's one update (ip and user_agent blanked, erased_at
# set, every other column unchanged). SQLite (the no-server development install) has no guard.

import django.db.models.deletion
from django.db import migrations, models

KEPT = (
    "id", "lead_id", "purpose", "legal_basis", "status", "text", "text_sha256", "source", "channel",
    "proof_reference", "proof_at", "actor_kind", "actor_id", "given_at", "recorded_at",
)
GUARD = f"""
CREATE OR REPLACE FUNCTION leads_consentrecord_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.erased_at IS NULL AND NEW.erased_at IS NOT NULL
        AND NEW.ip IS NULL AND NEW.user_agent = ''
        AND ({", ".join("NEW." + c for c in KEPT)}) IS NOT DISTINCT FROM ({", ".join("OLD." + c for c in KEPT)})
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'leads_consentrecord is append-only: % refused', TG_OP USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER leads_consentrecord_append_only BEFORE UPDATE OR DELETE ON leads_consentrecord
    FOR EACH ROW EXECUTE FUNCTION leads_consentrecord_append_only();
"""
UNGUARD = """
DROP TRIGGER IF EXISTS leads_consentrecord_append_only ON leads_consentrecord;
DROP FUNCTION IF EXISTS leads_consentrecord_append_only();
"""


def guard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(GUARD, params=None)


def unguard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNGUARD, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('leads', '0011_email_reply_touchpoint'),
    ]

    operations = [
        migrations.CreateModel(
            name='ConsentRecord',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('purpose', models.CharField(default='marketing_email', max_length=40)),
                ('legal_basis', models.CharField(choices=[('consent', 'Consent'), ('contract', 'Contract'), ('legal_obligation', 'Legal obligation'), ('legitimate_interest', 'Legitimate interest')], default='consent', max_length=20)),
                ('status', models.CharField(choices=[('none', 'No consent'), ('pending', 'Awaiting double opt-in confirmation'), ('opt_in', 'Opted in'), ('opt_out', 'Opted out')], max_length=10)),
                ('text', models.TextField(blank=True, help_text='The exact words the person agreed to.')),
                ('text_sha256', models.CharField(blank=True, help_text='Version hash of the text (hex SHA-256).', max_length=64)),
                ('source', models.CharField(blank=True, help_text='Form name, import, API, message...', max_length=200)),
                ('channel', models.CharField(choices=[('form', 'Form'), ('import', 'Import'), ('api', 'API'), ('user', 'Entered by a user'), ('unsubscribe', 'Unsubscribe link'), ('double_opt_in', 'Double opt-in'), ('complaint', 'Spam complaint'), ('erasure', 'Erasure'), ('automation', 'Automation')], max_length=20)),
                ('ip', models.GenericIPAddressField(blank=True, null=True)),
                ('user_agent', models.CharField(blank=True, max_length=500)),
                ('proof_reference', models.CharField(blank=True, help_text='Double opt-in proof: the confirmation message (e.g. message:42).', max_length=200)),
                ('proof_at', models.DateTimeField(blank=True, help_text='When the confirmation was clicked.', null=True)),
                ('actor_kind', models.CharField(choices=[('user', 'User (web)'), ('api', 'API client'), ('automation', 'Automation'), ('import', 'Import')], max_length=12)),
                ('actor_id', models.BigIntegerField(blank=True, null=True)),
                ('given_at', models.DateTimeField(help_text='When the person gave it (as told), else when recorded.')),
                ('recorded_at', models.DateTimeField()),
                ('erased_at', models.DateTimeField(blank=True, help_text='IP and user agent blanked by an erasure.', null=True)),
                ('lead', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='consent_records', to='leads.lead')),
            ],
            options={
                'ordering': ['-recorded_at', '-id'],
                'indexes': [models.Index(fields=['lead', 'purpose', '-recorded_at'], name='consent_lead_purpose')],
            },
        ),
        migrations.RunPython(guard, unguard),
    ]
