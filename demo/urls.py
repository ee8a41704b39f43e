from django.urls import path

from demo import views

urlpatterns = [path("demo/streets.geojson", views.demo_streets, name="demo-streets")]
