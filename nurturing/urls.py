"""Server-rendered nurturing pages (included at "nurturing/" by leadcrm.urls)."""

from django.urls import path

from nurturing import views, views_mail, views_sequences, views_workflows

urlpatterns = [
    path("workflows/", views_workflows.workflows_page, name="workflows"),
    path("workflows/<int:pk>/", views_workflows.workflow_detail, name="workflow-detail"),
    path("segments/", views.segments_page, name="segments"),
    path("segments/count/", views.segment_count_preview, name="segment-count-preview"),
    path("segments/from-list/", views.segment_from_list, name="segment-from-list"),
    path("segments/<int:pk>/", views.segment_detail, name="segment-detail"),
    path("email-templates/", views_mail.email_templates_page, name="email-templates"),
    path("email-templates/<int:pk>/", views_mail.email_template_edit, name="email-template-edit"),
    path("email-templates/<int:pk>/preview/", views_mail.email_template_preview, name="email-template-preview"),
    path("email-templates/<int:pk>/test/", views_mail.email_template_test, name="email-template-test"),
    path("email-senders/", views_mail.sender_identity_add, name="sender-identity-add"),
    path("email-topics/", views_mail.topic_add, name="topic-add"),
    path("email-performance/", views_mail.email_performance, name="email-performance"),
    path("sequences/", views_sequences.sequences_page, name="sequences"),
    path("sequences/<int:pk>/", views_sequences.sequence_detail, name="sequence-detail"),
    path("sequences/<int:pk>/steps/", views_sequences.sequence_steps, name="sequence-steps"),
    path("sequences/enroll/lead/<int:pk>/", views_sequences.sequence_enroll_lead, name="sequence-enroll-lead"),
    path("sequences/enroll/leads/", views_sequences.sequence_enroll_leads, name="sequence-enroll-leads"),
    path(
        "sequences/enrollments/<int:pk>/stop/",
        views_sequences.sequence_enrollment_stop,
        name="sequence-enrollment-stop",
    ),
]
