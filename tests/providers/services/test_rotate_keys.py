from cryptography.fernet import Fernet

from providers import crypto, services
from providers.models import Provider
from tests.conftest import SECRET


def test_rotation_reencrypts_under_the_new_first_key(make_provider, settings):
    make_provider(name="a", headers={"X-Org": "org-secret-1"})
    make_provider(name="b")
    old = settings.ROUTING_ENCRYPTION_KEYS
    settings.ROUTING_ENCRYPTION_KEYS = (Fernet.generate_key().decode(), *old)
    report = services.rotate_keys(actor="test")
    assert report.rotated == 2 and not report.undecryptable
    settings.ROUTING_ENCRYPTION_KEYS = settings.ROUTING_ENCRYPTION_KEYS[:1]  # old key retired
    assert {p.name: p.get_api_key() for p in Provider.objects.all()} == {"a": SECRET, "b": SECRET}
    assert Provider.objects.get(name="a").get_headers() == {"X-Org": "org-secret-1"}


def test_rotation_resumes_after_a_partial_run(make_provider, settings):
    for name in ("a", "b", "c"):
        make_provider(name=name)
    settings.ROUTING_ENCRYPTION_KEYS = (
        Fernet.generate_key().decode(),
        *settings.ROUTING_ENCRYPTION_KEYS,
    )
    # A crash after the first row: only "a" is under the new key.
    first = Provider.objects.get(name="a")
    Provider.objects.filter(pk=first.pk).update(
        api_key_ciphertext=crypto.rotate(first.api_key_ciphertext)
    )
    report = services.rotate_keys()
    assert (report.rotated, report.already_current) == (2, 1)
    again = services.rotate_keys()
    assert (again.rotated, again.already_current) == (0, 3)
    assert all(p.get_api_key() == SECRET for p in Provider.objects.all())


def test_undecryptable_row_is_reported_and_left_untouched(make_provider, settings):
    make_provider(name="a")
    lost = Provider.objects.get(name="a").api_key_ciphertext
    settings.ROUTING_ENCRYPTION_KEYS = (Fernet.generate_key().decode(),)
    provider = Provider.objects.get(name="a")
    assert provider.key_state == "undecryptable"
    report = services.rotate_keys()
    assert report.undecryptable == ["a"]
    assert Provider.objects.get(name="a").api_key_ciphertext == lost
