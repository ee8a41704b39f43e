from django.urls import path
from django.views.generic import RedirectView

from dispatch.web import views

urlpatterns = [
    path("", RedirectView.as_view(url="/live/", permanent=False)),
    path("live/", views.live_map, name="live-map"),
    path("proofs/<int:proof_id>/<str:kind>", views.proof_image, name="proof-image"),
]
