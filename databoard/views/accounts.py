"""Web pages: accounts (sign-up, log in/out, passwords, profile).

Log in, log out and the password pages are Django's own views with our
templates. Their templates live under ``databoard/accounts/`` rather than
``registration/``: the admin app comes first in INSTALLED_APPS and its
``registration/`` templates would shadow ours. Failed logins are throttled by
django-axes (see databoard.throttling), password-reset mails here.
"""
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import path, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from databoard import throttling
from databoard.forms.accounts import ProfileForm, SignUpForm
from databoard.models import TeamMember
from databoard.services import accounts
from datarun.errors import ApplicationError


def safe_next(request, default: str) -> str:
    """The ``next`` parameter when it points into this site, else ``default``."""
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return default


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("profile")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="databoard.backends.ViewerBackend")
        messages.success(request, f"Welcome, {user.username}: your account is ready. "
                                  f"Set your time zone and affiliation below.")
        return redirect(safe_next(request, reverse_lazy("profile")))
    return render(request, "databoard/accounts/signup.html",
                  {"form": form, "next": safe_next(request, "")},
                  status=400 if form.is_bound else 200)


def profile_page(request, *, form: ProfileForm | None = None,
                 error: ApplicationError | None = None, status: int = 200):
    """The profile form, the user's teams and pending invitations. Team and
    invitation actions that fail render it too, with their error."""
    user = request.user
    memberships = (TeamMember.objects.filter(user=user)
                   .select_related("team__event").order_by("team__event__name"))
    invitations = (user.team_invitations.select_related("team__event", "invited_by")
                   .order_by("-created_at"))
    return render(request, "databoard/accounts/profile.html", {
        "form": form or ProfileForm(user=user),
        "memberships": memberships,
        "invitations": invitations,
        "api_token": accounts.api_token_get(user=user),
        "error": error,
    }, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def profile(request):
    if request.method == "POST":
        form = ProfileForm(request.POST, user=request.user)
        if form.is_valid():
            form.save()
            messages.success(request, "Profile saved.")
            return redirect("profile")
        return profile_page(request, form=form, status=400)
    return profile_page(request)


@login_required
@require_http_methods(["POST"])
def api_token(request):
    """``action=create`` shows a token (the existing one, if any); ``action=revoke``
    deletes it, so that requests sending it are refused."""
    if request.POST.get("action") == "revoke":
        if accounts.api_token_revoke(user=request.user):
            messages.success(request, "API token revoked: requests sending it are refused.")
    else:
        accounts.api_token_create(user=request.user)
        messages.success(request, "Your API token is below.")
    return redirect("profile")


class PasswordResetView(auth_views.PasswordResetView):
    """Django's, refusing a client address or an e-mail that asked too often
    (a reset mail is sent to anyone's address on request)."""

    def form_valid(self, form):
        wait = throttling.password_reset_wait(self.request, form.cleaned_data["email"])
        if wait is not None:
            return throttling.password_reset_refusal(self.request, wait, form)
        return super().form_valid(form)


def _auth_view(view_class, template: str, **kwargs):
    return view_class.as_view(template_name=f"databoard/accounts/{template}", **kwargs)


urlpatterns = [
    path("signup/", signup, name="signup"),
    path("login/", _auth_view(auth_views.LoginView, "login.html",
                              redirect_authenticated_user=True), name="login"),
    # Django's LogoutView answers POST only (a GET link could log anyone out).
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("profile/", profile, name="profile"),
    path("profile/token/", api_token, name="api-token"),
    path("password/change/", _auth_view(auth_views.PasswordChangeView,
                                        "password_change_form.html"),
         name="password_change"),
    path("password/change/done/", _auth_view(auth_views.PasswordChangeDoneView,
                                             "password_change_done.html"),
         name="password_change_done"),
    path("password/reset/", _auth_view(
        PasswordResetView, "password_reset_form.html",
        email_template_name="databoard/accounts/password_reset_email.txt",
        subject_template_name="databoard/accounts/password_reset_subject.txt"),
         name="password_reset"),
    path("password/reset/sent/", _auth_view(auth_views.PasswordResetDoneView,
                                            "password_reset_done.html"),
         name="password_reset_done"),
    path("password/reset/<uidb64>/<token>/", _auth_view(auth_views.PasswordResetConfirmView,
                                                        "password_reset_confirm.html"),
         name="password_reset_confirm"),
    path("password/reset/complete/", _auth_view(auth_views.PasswordResetCompleteView,
                                                "password_reset_complete.html"),
         name="password_reset_complete"),
]
