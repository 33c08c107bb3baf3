"""webhooks/ssrf.py: which callback URLs are refused, in every spelling of an address.

IP literals are judged without DNS; host names go through a fake resolver (the guard's
`resolve` argument), except `localhost`, which the system resolves itself.
"""

import ipaddress

import pytest

from webhooks import ssrf


@pytest.fixture(autouse=True)
def no_allow_list(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    settings.WEBHOOK_ALLOWED_NETWORKS = []


def resolver(*addresses: str):
    def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/hook", "loopback"),
        ("http://127.0.0.2:8080/hook", "loopback"),
        ("http://127.1/hook", "loopback"),  # short form
        ("http://2130706433/hook", "loopback"),  # decimal
        ("http://0x7f000001/hook", "loopback"),  # hex
        ("http://0177.0.0.1/hook", "loopback"),  # octal
        ("http://[::1]/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),  # IPv4-mapped
        ("http://[::ffff:7f00:1]/hook", "loopback"),  # IPv4-mapped, hex
        ("http://[2002:7f00:1::]/hook", "loopback"),  # 6to4 of 127.0.0.1
        ("http://localhost/hook", "loopback"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://[::]/hook", "unspecified"),
        ("http://10.0.0.1/hook", "private"),
        ("http://172.16.5.4/hook", "private"),
        ("http://192.168.1.1/hook", "private"),
        ("http://[::ffff:10.0.0.1]/hook", "private"),
        ("http://[fd12:3456::1]/hook", "private"),  # unique local
        ("http://169.254.1.1/hook", "link-local"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://100.64.0.1/hook", "carrier-grade NAT"),
        ("http://100.127.255.254/hook", "carrier-grade NAT"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://[ff02::1]/hook", "multicast"),
        ("http://240.0.0.1/hook", "reserved"),
        ("http://192.0.2.1/hook", "private"),  # documentation (TEST-NET-1)
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "cloud metadata"),
        ("http://[::ffff:169.254.169.254]/", "cloud metadata"),
        ("http://[64:ff9b::a9fe:a9fe]/", "cloud metadata"),  # NAT64 of 169.254.169.254
        ("http://100.100.100.200/latest/meta-data/", "cloud metadata"),
    ],
)
def test_it_refuses_non_public_addresses_in_every_spelling(url, reason):
    with pytest.raises(ssrf.RefusedURL) as refused:
        ssrf.check_url(url)

    assert f"a {reason} address" in refused.value.detail


def test_it_accepts_a_public_address():
    target = ssrf.check_url("https://93.184.215.14:8443/hooks/job?x=1")

    assert target.addresses == ("93.184.215.14",)
    assert (target.scheme, target.host, target.port) == ("https", "93.184.215.14", 8443)
    assert target.request_target == "/hooks/job?x=1"
    assert target.host_header == "93.184.215.14:8443"


def test_it_accepts_a_name_that_resolves_only_to_public_addresses():
    target = ssrf.check_url(
        "https://hooks.example.com/x", resolve=resolver("93.184.215.14", "2606:2800:21f:cb07::1")
    )

    assert target.addresses == ("93.184.215.14", "2606:2800:21f:cb07::1")
    assert target.host_header == "hooks.example.com"


def test_it_refuses_a_name_when_any_of_its_addresses_is_not_public():
    # One public record beside a private one: a connection might take either.
    with pytest.raises(ssrf.RefusedURL) as refused:
        ssrf.check_url("https://hooks.example.com/x", resolve=resolver("93.184.215.14", "10.1.2.3"))

    # The caller reads the rule; what the name resolves to is for the log only.
    assert "public addresses only" in str(refused.value)
    assert "10.1.2.3" not in str(refused.value) and "private" not in str(refused.value)
    assert refused.value.detail == "hooks.example.com resolves to 10.1.2.3, a private address."


def test_a_name_that_does_not_resolve_reads_as_one_that_resolves_to_an_internal_address():
    def fail(host, port):
        raise OSError("Name or service not known")

    with pytest.raises(ssrf.RefusedURL) as unknown:
        ssrf.check_url("https://nowhere.invalid/x", resolve=lambda host, port: [])
    with pytest.raises(ssrf.RefusedURL) as internal:
        ssrf.check_url("https://vm.internal/x", resolve=resolver("127.0.0.1"))

    assert str(unknown.value) == str(internal.value)


def test_a_name_that_does_not_resolve_is_refused_as_a_resolution_failure():
    def fail(host, port):
        raise ssrf.ResolutionFailed(f"{host} could not be resolved.")

    with pytest.raises(ssrf.ResolutionFailed):
        ssrf.check_url("https://nowhere.invalid/x", resolve=fail)


def test_the_system_resolver_refuses_an_unknown_name():
    with pytest.raises(ssrf.ResolutionFailed):
        ssrf.check_url("https://does-not-exist.invalid/x")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://93.184.215.14/x", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("gopher://93.184.215.14/", "http:// or https://"),
        ("//93.184.215.14/x", "http:// or https://"),
        ("93.184.215.14/x", "http:// or https://"),
        ("http:///x", "no host"),
        ("http://user:secret@93.184.215.14/x", "credentials"),
        ("http://user@93.184.215.14/x", "credentials"),
        ("http://evil.example\\@127.0.0.1/x", "credentials"),
        ("http://93.184.215.14:99999/x", "cannot be parsed"),
        ("http://93.184.215.14:0/x", "port"),
        ("http://[::1/x", "cannot be parsed"),
        ("http://93.184.215.14/a b", "without spaces"),
        ("http://93.184.215.14/\n", "without spaces"),
        ("http://bücher.example/x", "ASCII"),
        ("http://93.184.215.14/" + "a" * 2048, "longer than 2048"),
    ],
)
def test_it_refuses_malformed_urls(url, message):
    with pytest.raises(ssrf.RefusedURL, match=message):
        ssrf.check_url(url, resolve=resolver("93.184.215.14"))


def test_an_allowed_network_permits_its_addresses_only(settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.1/32")]

    assert ssrf.check_url("http://127.0.0.1:9000/hook").addresses == ("127.0.0.1",)
    # The IPv4-mapped form of an allowed address is the same address.
    assert ssrf.check_url("http://[::ffff:127.0.0.1]:9000/hook").port == 9000
    for url in ("http://127.0.0.2/hook", "http://[::1]/hook", "http://10.0.0.1/hook"):
        with pytest.raises(ssrf.RefusedURL):
            ssrf.check_url(url)


def test_an_allowed_host_may_resolve_to_private_addresses(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["hooks.internal", ".corp.example"]

    for host in ("hooks.internal", "HOOKS.internal", "corp.example", "a.b.corp.example"):
        target = ssrf.check_url(f"http://{host}/x", resolve=resolver("10.0.0.7"))
        assert target.addresses == ("10.0.0.7",)
    with pytest.raises(ssrf.RefusedURL):
        ssrf.check_url("http://evilcorp.example/x", resolve=resolver("10.0.0.7"))


def test_no_allow_list_opens_a_metadata_address(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["metadata.internal"]
    settings.WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("169.254.0.0/16")]

    with pytest.raises(ssrf.RefusedURL) as refused:
        ssrf.check_url("http://metadata.internal/", resolve=resolver("169.254.169.254"))
    assert "cloud metadata" in refused.value.detail
    with pytest.raises(ssrf.RefusedURL, match="cloud metadata"):
        ssrf.check_url("http://169.254.169.254/latest/meta-data/")


def test_the_refusal_names_the_settings_that_allow_a_private_address():
    with pytest.raises(ssrf.RefusedURL) as refused:
        ssrf.check_url("http://10.1.2.3/hook")

    assert "WEBHOOK_ALLOWED_NETWORKS" in str(refused.value)
    assert "WEBHOOK_ALLOWED_HOSTS" in str(refused.value)


def test_a_cloud_metadata_refusal_names_no_setting_that_cannot_allow_it():
    with pytest.raises(ssrf.RefusedURL) as refused:
        ssrf.check_url("http://169.254.169.254/latest/meta-data/")

    assert "WEBHOOK_ALLOWED" not in str(refused.value)
