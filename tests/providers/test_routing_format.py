"""Fresh times read "just now"; older ones "N minutes ago" (providers/templatetags)."""

from datetime import timedelta

from django.utils import timezone

from providers import services
from providers.models import Provider
from providers.templatetags.routing_format import JUST_NOW, ago


def test_a_fresh_test_reads_just_now_on_the_provider_page(
    client, login_as, make_provider, upstream
):
    login_as("viewer")
    provider = make_provider(name="acme", base_url=upstream.base_url + "/v1")
    services.provider_test(provider=provider)
    html = client.get("/providers/acme/").content.decode()
    assert f">{JUST_NOW}</time>" in html and "0 minutes ago" not in html
    Provider.objects.filter(pk=provider.pk).update(
        last_test_at=timezone.now() - timedelta(minutes=5, seconds=10)
    )
    assert ">5\xa0minutes ago</time>" in client.get("/providers/acme/").content.decode()


def test_ago_uses_the_largest_unit_only():
    assert ago(timezone.now() - timedelta(seconds=59)) == JUST_NOW
    assert ago(timezone.now() - timedelta(hours=3, minutes=20)) == "3\xa0hours ago"
    assert ago(None) == ""
