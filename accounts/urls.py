from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("users/", views.users, name="users"),
    path("setup/", views.setup, name="setup"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
