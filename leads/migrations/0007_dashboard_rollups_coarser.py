# The dashboard's aggregate tables at a coarser grain (day × source, day × campaign); they
# hold derived data only, rebuilt by the next refresh, so they are dropped and recreated.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0006_lean_lead_indexes"),
    ]

    operations = [
        migrations.DeleteModel(name="LeadRollup"),
        migrations.DeleteModel(name="AttributionRollup"),
        migrations.CreateModel(
            name="LeadRollup",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("day", models.DateField()),
                ("kind", models.CharField(max_length=8)),
                ("key", models.CharField(blank=True, max_length=200)),
                ("stage", models.CharField(max_length=16)),
                (
                    "top",
                    models.SmallIntegerField(
                        help_text="Rank in FUNNEL_STAGES of the furthest stage reached; -1 none."
                    ),
                ),
                ("n", models.PositiveIntegerField()),
                ("open_n", models.PositiveIntegerField(default=0)),
                ("open_value", models.DecimalField(decimal_places=2, default=0, max_digits=18)),
                ("won_n", models.PositiveIntegerField(default=0)),
                ("won_value", models.DecimalField(decimal_places=2, default=0, max_digits=18)),
                ("lost_n", models.PositiveIntegerField(default=0)),
                ("cycle_n", models.PositiveIntegerField(default=0)),
                ("cycle_seconds", models.FloatField(default=0)),
            ],
            options={"indexes": [models.Index(fields=["kind", "day"], name="leads_leadr_kind_746e17_idx")]},
        ),
        migrations.CreateModel(
            name="AttributionRollup",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("day", models.DateField()),
                ("model", models.CharField(max_length=6)),
                ("credited", models.CharField(max_length=200)),
                ("credit", models.FloatField()),
            ],
            options={"indexes": [models.Index(fields=["model", "day"], name="leads_attri_model_9f8652_idx")]},
        ),
    ]
