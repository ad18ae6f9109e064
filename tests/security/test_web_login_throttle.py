"""Password guessing: account lockout, the per-address budget, and who the client is."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client, RequestFactory
from django.utils import timezone

from accounts import throttle
from accounts.models import ThrottleHit
from tests.conftest import shared_database_url

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "the-right-password-42"
LOCKED = "locked for"


@pytest.fixture
def ada(db):
    return User.objects.create_user("ada", password=PASSWORD)


def _login(client: Client, username: str, password: str, **extra) -> str:
    response = client.post("/login/", {"username": username, "password": password}, **extra)
    if response.status_code == 302:
        return "in"
    assert response.status_code == 200
    html = response.content.decode()
    return "locked" if LOCKED in html or "blocked for" in html else "wrong"


def _fail(client: Client, times: int, username: str = "ada", **extra) -> list[str]:
    return [_login(client, username, f"guess-{i}", **extra) for i in range(times)]


def test_right_password_is_refused_after_ten_wrong_ones_with_a_message(client, ada):
    assert _fail(client, 10) == ["wrong"] * 10
    response = client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    html = response.content.decode()
    assert "Too many failed logins for this account" in html and "15 more minutes" in html


def test_forged_x_forwarded_for_resets_neither_the_lockout_nor_the_address_budget(
    client, ada, settings
):
    # Every guess claims another address. Believed, the header would spread the per-address
    # count thin; the account lockout alone would hide that, so the budget is checked too.
    settings.ROUTING_LOGIN_IP_FAILURE_LIMIT = 12
    for i in range(10):
        _login(client, "ada", "guess", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}")
    assert _login(client, "ada", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.77") == "locked"
    User.objects.create_user("bob", password=PASSWORD)
    for i in range(2):
        _login(client, f"nobody{i}", "guess", HTTP_X_FORWARDED_FOR=f"203.0.113.{50 + i}")
    # bob never failed: only the peer's spent budget, 127.0.0.1's, can refuse him.
    assert _login(client, "bob", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.78") == "locked"
    counted = ThrottleHit.objects.filter(scope=throttle.LOGIN_ADDRESS)
    assert set(counted.values_list("key", flat=True)) == {"127.0.0.1"}


def test_lockout_holds_for_a_fresh_session_and_another_address(ada):
    _fail(Client(REMOTE_ADDR="192.0.2.1"), 10)
    assert _login(Client(REMOTE_ADDR="192.0.2.99"), "ada", PASSWORD) == "locked"


def test_username_case_and_width_variants_share_one_lockout(client, ada):
    for name in ["ADA", "Ada", "ａｄａ", " ada", "aDa"] * 2:
        _login(client, name, "guess")
    assert _login(client, "ada", PASSWORD) == "locked"


def test_refused_attempts_do_not_extend_the_lockout_for_ever(client, ada, settings):
    _fail(client, 10)
    for _ in range(5):
        assert _login(client, "ada", PASSWORD) == "locked"
    # The lockout time passes since the tenth failure; the refused tries did not count.
    past = timezone.now() - timedelta(seconds=settings.ROUTING_LOGIN_LOCKOUT_SECONDS + 1)
    ThrottleHit.objects.update(at=past)
    assert _login(client, "ada", PASSWORD) == "in"


def test_one_more_wrong_password_after_the_lockout_locks_again(client, ada, settings):
    _fail(client, 10)
    settings.ROUTING_LOGIN_LOCKOUT_SECONDS = 60  # shorter than the 15-minute window
    ThrottleHit.objects.update(at=timezone.now() - timedelta(seconds=61))
    assert _fail(client, 1) == ["wrong"]
    assert _login(client, "ada", PASSWORD) == "locked"


def test_password_spraying_from_one_address_is_blocked_across_accounts(client, db, settings):
    settings.ROUTING_LOGIN_IP_FAILURE_LIMIT = 6
    User.objects.create_user("victim", password=PASSWORD)
    for i in range(6):
        _login(client, f"user{i}", "Summer2025!", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}")
    assert _login(client, "victim", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.200") == "locked"
    # Another address is not affected.
    assert _login(Client(REMOTE_ADDR="192.0.2.50"), "victim", PASSWORD) == "in"


def test_successful_login_does_not_refill_a_sprayers_address_budget(client, ada, settings):
    settings.ROUTING_LOGIN_IP_FAILURE_LIMIT = 4
    for i in range(3):
        _login(client, f"nobody{i}", "guess")
    assert _login(client, "ada", PASSWORD) == "in"
    client.logout()
    _login(client, "nobody9", "guess")
    assert _login(client, "ada", PASSWORD) == "locked"


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(settings):
    settings.ROUTING_TRUSTED_PROXIES = ["10.0.0.1"]
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.7", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert throttle.client_ip(request) == "192.0.2.7"


def test_spoofed_left_entries_behind_a_trusted_proxy_are_skipped(settings):
    # The proxy appends the address it saw; whatever the client wrote before it is ignored.
    settings.ROUTING_TRUSTED_PROXIES = ["10.0.0.0/8"]
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.9, 10.0.0.2"
    )
    assert throttle.client_ip(request) == "203.0.113.9"
    garbage = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="x, 10.0.0.3")
    assert throttle.client_ip(garbage) == "10.0.0.3"


@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_passwords_cannot_check_more_than_ten():
    User.objects.create_user("ada", password=PASSWORD)

    def guess(i: int) -> str:
        try:
            return _login(Client(), "ada", f"guess-{i}")
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(guess, range(24)))
    # Racing attempts may be refused more than needed, never checked more than allowed: the
    # passwords checked in the burst and after it add up to ten at most.
    checked = outcomes.count("wrong")
    assert checked <= 10
    assert _fail(Client(), 10 - checked) == ["wrong"] * (10 - checked)
    assert _login(Client(), "ada", PASSWORD) == "locked"


@pytest.mark.django_db(transaction=True)
def test_failures_made_in_another_process_lock_the_account_here():
    from django.conf import settings as dj

    User.objects.create_user("ada", password=PASSWORD)
    script = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "c = Client()\n"
        "for i in range(10):\n"
        "    r = c.post('/login/', {'username': 'ada', 'password': f'guess-{i}'})\n"
        "    assert r.status_code == 200, r.status_code\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "routing_admin.settings",
        "DATABASE_URL": shared_database_url(),
        "SECRET_KEY": dj.SECRET_KEY,
        "ROUTING_ENCRYPTION_KEYS": ",".join(dj.ROUTING_ENCRYPTION_KEYS),
        "ROUTING_HTTPS_REDIRECT": "0",
        "ALLOWED_HOSTS": "testserver",
    }
    subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, check=True, timeout=120)
    assert _login(Client(), "ada", PASSWORD) == "locked"
