"""Server-rendered nurturing pages (included at "nurturing/" by leadcrm.urls)."""

from django.urls import path

from nurturing import views

urlpatterns = [
    path("segments/", views.segments_page, name="segments"),
    path("segments/count/", views.segment_count_preview, name="segment-count-preview"),
    path("segments/from-list/", views.segment_from_list, name="segment-from-list"),
    path("segments/<int:pk>/", views.segment_detail, name="segment-detail"),
]
