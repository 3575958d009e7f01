from django.contrib import admin
from django.contrib.staticfiles.views import serve
from django.urls import include, path, re_path

from logux_sync.views import LoguxView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("logux/", LoguxView.as_view(), name="logux"),
    # gunicorn serves the example with DEBUG off as well; a real deployment serves /static/ elsewhere.
    re_path(r"^static/(?P<path>.*)$", serve, {"insecure": True}),
    path("", include("board.urls")),
]
