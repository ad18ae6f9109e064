from django.contrib.auth import views as auth_views
from django.urls import path

from . import oidc, team_views, views

urlpatterns = [
    path("users/", views.users, name="users"),
    path("teams/", team_views.team_list, name="team_list"),
    path("teams/<str:name>/", team_views.team_detail, name="team_detail"),
    path("teams/<str:name>/tokens/", team_views.team_token_create, name="team_token_create"),
    path(
        "teams/<str:name>/tokens/<str:token>/",
        team_views.team_token_detail,
        name="team_token_detail",
    ),
    path(
        "teams/<str:name>/tokens/<str:token>/revoke/",
        team_views.team_token_revoke,
        name="team_token_revoke",
    ),
    path("teams/<str:name>/limits/", team_views.team_limits, name="team_limits"),
    path("teams/<str:name>/members/", team_views.team_member_add, name="team_member_add"),
    path(
        "teams/<str:name>/members/<str:username>/remove/",
        team_views.team_member_remove,
        name="team_member_remove",
    ),
    path("teams/<str:name>/remove/", team_views.team_remove, name="team_remove"),
    path("setup/", views.setup, name="setup"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The names are mozilla-django-oidc's, which reverses the callback's.
    path("oidc/authenticate/", oidc.SignInView.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", oidc.CallbackView.as_view(), name="oidc_authentication_callback"),
]
