from django.urls import path

from scorecards.web import views

urlpatterns = [
    path("rate/<str:token>/", views.rate_delivery, name="rating-page"),
    path("scorecards/", views.dispatcher_scorecards, name="scorecards-page"),
    path("scorecards/me/", views.my_scorecard, name="my-scorecard-page"),
]
