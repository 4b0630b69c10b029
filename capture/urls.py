"""Capture pages (included at the site's root by leadcrm.urls): the public hosted form and
embed script under /f/<site_key>/, marketing's pages under /forms/."""

from django.urls import path

from capture import views

urlpatterns = [
    path("f/<str:site_key>/", views.hosted_form, name="capture-hosted"),
    path("f/<str:site_key>/submit/", views.hosted_submit, name="capture-submit"),
    path("f/<str:site_key>/thanks/", views.hosted_thanks, name="capture-thanks"),
    path("f/<str:site_key>/embed.js", views.embed_js, name="capture-embed"),
    path("f/<str:site_key>/form.json", views.form_definition, name="capture-form-json"),
    path("forms/", views.forms_page, name="capture-forms"),
    path("forms/submissions/", views.submissions_page, name="capture-submissions"),
    path("forms/<int:pk>/", views.form_detail, name="capture-form-detail"),
]
