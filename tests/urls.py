from django.urls import path

from logux_sync.views import LoguxView

# The README's routing; tests/urls_include.py is its documented alternative.
urlpatterns = [path("logux/", LoguxView.as_view(), name="logux")]
