from django.urls import path

from onboarding.web import views

# Included at /onboarding/ (config/urls.py): the applicant's mobile pages, staff's document view.
urlpatterns = [
    path("join/<str:token>/", views.join, name="onboarding-join"),
    path("apply/", views.apply, name="onboarding-apply"),
    path("apply/liveness/", views.liveness, name="onboarding-liveness-page"),
    path("documents/<uuid:document_id>", views.document_file, name="onboarding-document-file"),
]
