"""Standard Webhooks signing and the destination rules of the webhook sender."""

from __future__ import annotations

import base64

import pytest

from service.adapters.webhook import (
    DestinationRefused,
    check_destination,
    generate_secret,
    sign,
    signed_headers,
    verify,
)

# The test vector published with the Standard Webhooks specification (and Svix's libraries).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_matches_the_specification_vector():
    """sign() reproduces the specification's published signature byte for byte."""
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_verify_accepts_the_specification_vector_within_tolerance():
    """A receiver accepts the spec's delivery near its timestamp and refuses it much later."""
    headers = {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    }
    assert verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP + 10)
    assert not verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP + 3600)


def test_verify_refuses_a_changed_body_or_another_secret():
    """Any change to the body, or the wrong secret, fails verification."""
    headers = signed_headers(SPEC_SECRET, "msg_1", 1000, b"{}")
    assert verify(SPEC_SECRET, headers, b"{}", now=1000)
    assert not verify(SPEC_SECRET, headers, b"{ }", now=1000)
    assert not verify(generate_secret(), headers, b"{}", now=1000)


def test_generated_secrets_have_the_whsec_format():
    """Secrets are whsec_ + base64 of 32 random bytes, and differ each time."""
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert secret != generate_secret()


def _resolver(*addresses: str):
    return lambda host, port: list(addresses)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "192.168.0.10", "172.16.5.5", "169.254.169.254", "::1", "fe80::1", "0.0.0.0"],
)
def test_private_loopback_and_link_local_destinations_are_refused(address):
    """A host resolving to a non-public address is refused unless private networks are allowed."""
    with pytest.raises(DestinationRefused, match="non-public"):
        check_destination("https://hooks.example.com/x", allow_private=False, resolve=_resolver(address))
    check_destination("https://hooks.example.com/x", allow_private=True, resolve=_resolver(address))


def test_one_private_address_among_public_ones_is_enough_to_refuse():
    """Every resolved address must be public (no DNS round-robin into the LAN)."""
    with pytest.raises(DestinationRefused):
        check_destination("https://a.example/x", False, resolve=_resolver("93.184.216.34", "10.0.0.1"))


def test_public_destinations_pass_and_bad_urls_are_refused():
    """Public http(s) URLs pass and return the vetted address; other schemes and unknown hosts do not."""
    public = _resolver("93.184.216.34")
    assert check_destination("https://a.example/x", False, resolve=public) == "93.184.216.34"
    with pytest.raises(DestinationRefused):
        check_destination("ftp://a.example/x", False, resolve=_resolver("93.184.216.34"))

    def unresolvable(host, port):
        raise OSError("Name or service not known")

    with pytest.raises(DestinationRefused, match="cannot resolve"):
        check_destination("https://nowhere.invalid/x", False, resolve=unresolvable)


def test_an_allow_list_opens_only_the_named_private_networks():
    """127.0.0.1/32 on the allow-list: loopback passes, another private address is still refused."""
    from service.adapters.webhook import parse_networks

    allowed = parse_networks("127.0.0.1/32, 10.20.0.0/16")
    assert check_destination("http://hooks.local/x", False, _resolver("127.0.0.1"), allowed) == "127.0.0.1"
    assert check_destination("http://hooks.local/x", False, _resolver("10.20.3.4"), allowed) == "10.20.3.4"
    with pytest.raises(DestinationRefused):
        check_destination("http://hooks.local/x", False, _resolver("192.168.1.9"), allowed)
    with pytest.raises(ValueError):
        parse_networks("not-a-network")
