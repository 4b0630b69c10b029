"""Server-rendered pages (included at "" by leadcrm.urls)."""

from django.urls import path

from leads import views, views_import, views_work

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("queue/", views_work.queue, name="queue"),
    path("filters/", views_work.saved_filter_save, name="saved-filter-save"),
    path("filters/<int:pk>/delete/", views_work.saved_filter_delete, name="saved-filter-delete"),
    path("leads/", views_work.leads_list, name="leads-list"),
    path("leads/<int:pk>/", views_work.lead_detail, name="lead-detail"),
    path("leads/<int:pk>/claim/", views_work.lead_claim, name="lead-claim"),
    path("leads/<int:pk>/log/", views_work.lead_log, name="lead-log"),
    path("leads/<int:pk>/tasks/", views_work.lead_task_add, name="lead-task-add"),
    path("tasks/<int:pk>/done/", views_work.task_done, name="task-done"),
    path("leads/<int:pk>/move/", views_work.lead_move, name="lead-move"),
    path("leads/<int:pk>/bant/", views_work.lead_bant, name="lead-bant"),
    path("leads/<int:pk>/opportunity/", views_work.lead_opportunity, name="lead-opportunity"),
    path("import/", views_import.import_upload, name="import"),
    path("import/<int:pk>/", views_import.import_detail, name="import-detail"),
    path("import/<int:pk>/progress/", views_import.import_progress, name="import-progress"),
    path("import/<int:pk>/errors.csv", views_import.import_errors, name="import-errors"),
]
