"""adapter.redaction: every form of a credential is listed, and redact removes all of them."""

import base64

import pytest
from yarl import URL

from adapter.redaction import (
    REDACTED,
    authorization_forms,
    basic_auth_forms,
    header_forms,
    redact,
    secret_forms,
    url_credential_forms,
)

USER, PASSWORD = "alice", "p@ss/w'rd\\x"
PAIR_BASE64 = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
PERCENT_ENCODED = "p%40ss%2Fw%27rd%5Cx"


def test_basic_auth_forms_cover_what_is_sent_and_what_was_typed() -> None:
    forms = basic_auth_forms(USER, PASSWORD)
    assert {PAIR_BASE64, f"{USER}:{PASSWORD}", PASSWORD, PERCENT_ENCODED} <= forms
    assert repr(PASSWORD)[1:-1] in forms  # as an error message's repr() of a body shows it
    assert USER not in forms  # a user name alone is no secret


def test_basic_auth_without_a_password_hides_the_user_name() -> None:
    assert {"token-as-user", base64.b64encode(b"token-as-user:").decode()} <= basic_auth_forms(
        "token-as-user", ""
    )


def test_url_credentials_in_every_spelling() -> None:
    url = URL(f"http://{USER}:{PERCENT_ENCODED}@prometheus:9090/prom")
    assert url.password == PASSWORD
    forms = url_credential_forms(url)
    assert {PAIR_BASE64, PASSWORD, PERCENT_ENCODED, f"{USER}:{PERCENT_ENCODED}"} <= forms
    assert url_credential_forms(URL("http://prometheus:9090")) == frozenset()


def test_authorization_forms_keep_the_scheme_and_decode_basic() -> None:
    assert authorization_forms("Bearer tok-123") == secret_forms("tok-123")
    forms = authorization_forms(f"Basic {PAIR_BASE64}")
    assert {PAIR_BASE64, PASSWORD, f"{USER}:{PASSWORD}"} <= forms
    assert "Basic" not in forms
    assert authorization_forms("Basic not-base64!") == secret_forms("not-base64!")
    assert authorization_forms("raw-key") == secret_forms("raw-key")


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("Authorization", True),
        ("Proxy-Authorization", True),
        ("X-Api-Key", True),
        ("X-Auth-Token", True),
        ("Cookie", True),
        ("X-Scope-Orgid", False),
        ("Accept-Encoding", False),
    ],
)
def test_header_forms_by_header_name(name: str, secret: bool) -> None:
    assert bool(header_forms(name, "value-1234")) is secret


def test_redact_replaces_the_longest_form_first() -> None:
    forms = basic_auth_forms(USER, PASSWORD)
    text = f"denied Basic {PAIR_BASE64}: {USER}:{PASSWORD} from http://{USER}:{PERCENT_ENCODED}@h"
    assert redact(text, forms) == f"denied Basic {REDACTED}: {REDACTED} from http://{REDACTED}@h"


def test_redact_removes_a_credential_cut_off_by_a_quote_or_the_end() -> None:
    forms = secret_forms("abcdefghijklmnop")
    # An error message quotes the first bytes of a body, cut in the middle of the token.
    assert redact("body 'Authorization: Bearer abcdefg'", forms) == (
        f"body 'Authorization: Bearer {REDACTED}'"
    )
    assert redact("body ends Bearer abcdefgh", forms) == f"body ends Bearer {REDACTED}"
    # Three characters say little and would match ordinary text: left alone.
    assert redact("the abc'", forms) == "the abc'"
    # Not at a cut: an unrelated word that shares a start stays.
    assert redact("abcdefg is a word here", forms) == "abcdefg is a word here"


def test_redact_escaped_forms() -> None:
    forms = basic_auth_forms(USER, PASSWORD)
    assert PASSWORD not in redact(repr(f"echo {PASSWORD}"), forms)
    assert "w'rd" not in redact(repr(f"echo {PASSWORD}"), forms)
    assert redact("nothing secret here", forms) == "nothing secret here"
    assert redact("", forms) == ""
    assert redact("text", ()) == "text"


@pytest.mark.parametrize(
    "body",
    [
        f"plain {PASSWORD}",
        f'both quote kinds " and {PASSWORD}',
        f"a tab\t{PASSWORD}\n",
    ],
)
def test_redact_a_password_inside_any_repr(body: str) -> None:
    text = redact(repr(body), basic_auth_forms(USER, PASSWORD))
    assert "ss/w" not in text and REDACTED in text
