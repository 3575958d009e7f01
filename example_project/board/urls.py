from django.contrib.auth.views import LogoutView
from django.urls import path

from . import views

app_name = "board"

urlpatterns = [
    path("", views.BoardView.as_view(), name="board"),
    path("login/", views.BoardLoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(next_page="board:login"), name="logout"),
]
