from django.urls import include, path

urlpatterns = [path("logux/", include("logux_sync.urls"))]
