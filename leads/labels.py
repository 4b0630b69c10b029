"""Choice labels the pages translate at render time (`{% translate row.label %}`): marked
here so `makemessages` keeps them in the catalogue (the models keep plain strings)."""

from django.utils.translation import gettext_noop as _

LABELS = (
    # leads.models.Stage
    _("Marketing captured lead"),
    _("Marketing qualified lead"),
    _("Sales qualified lead"),
    _("Sales accepted lead"),
    _("Created opportunity"),
    _("Won opportunity"),
    _("Disqualified"),
    _("Lost"),
    _("Recycled"),
    # leads.models.ConsentStatus
    _("No consent"),
    _("Awaiting double opt-in confirmation"),
    _("Opted in"),
    _("Opted out"),
    # leads.models.TaskKind
    _("Call"),
    _("E-mail"),
    _("Meeting"),
    _("LinkedIn"),
    _("To-do"),
    # leads.models.ImportStatus
    _("Pending"),
    _("Running"),
    _("Done"),
    _("Failed"),
)
