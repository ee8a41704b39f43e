from django.urls import path

from onboarding.api import views

# Included at /api/v1/onboarding/ (config/urls.py).
urlpatterns = [
    path("signup/<str:token>", views.SignUpView.as_view(), name="onboarding-signup"),
    path("application", views.OwnApplicationView.as_view(), name="onboarding-own-application"),
    path("application/details", views.DetailsView.as_view(), name="onboarding-details"),
    path("application/consents", views.ConsentView.as_view(), name="onboarding-consents"),
    path("application/documents", views.DocumentUploadView.as_view(), name="onboarding-documents"),
    path("application/liveness", views.LivenessView.as_view(), name="onboarding-liveness"),
    path("application/submit", views.SubmitView.as_view(), name="onboarding-submit"),
    path("application/appeal", views.AppealView.as_view(), name="onboarding-appeal"),
    path("applications", views.ApplicationListView.as_view(), name="onboarding-applications"),
    path("applications/<uuid:pk>", views.ApplicationDetailView.as_view(), name="onboarding-application"),
    path("reviews", views.ReviewListView.as_view(), name="onboarding-reviews"),
    path("reviews/<uuid:pk>/resolve", views.ResolveReviewView.as_view(), name="onboarding-review-resolve"),
    path("screening/checkr/webhook", views.CheckrWebhookView.as_view(), name="onboarding-checkr-webhook"),
]
