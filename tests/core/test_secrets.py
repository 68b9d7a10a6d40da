"""Redaction: a password written in any of the forms Postgres accepts (URL userinfo, a query
string parameter, a keyword/value connection string) never survives into text QTIS prints."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg.conninfo import make_conninfo

from core.secrets import redact

# any character libpq can carry in a password (it cannot hold NUL; surrogates are not text)
PASSWORDS = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1
)
# what RFC 3986 lets a user write unescaped in a URL's userinfo; the rest is percent-encoded
USERINFO_SAFE = "!$&'()*+,;=:"


def userinfo_url(password: str, safe: str) -> str:
    return f"postgresql://trader:{quote(password, safe=safe)}@db.example:5432/qtis?sslmode=require"


def query_url(password: str, first: bool) -> str:
    secret = f"password={quote(password, safe='')}"
    params = [secret, "host=/run/pg"] if first else ["host=/run/pg", secret, "sslmode=prefer"]
    return f"postgresql://trader@/qtis?{'&'.join(params)}"


def keyword_dsn(password: str, position: int) -> str:
    """A libpq keyword/value string, quoted by libpq's own rules (psycopg's make_conninfo)."""
    pairs = [("host", "db.example"), ("dbname", "qtis"), ("user", "trader")]
    pairs.insert(position, ("password", password))
    return make_conninfo(**dict(pairs))


FORMS = {
    "userinfo, percent-encoded": lambda pw, i: userinfo_url(pw, safe=""),
    "userinfo, as typed": lambda pw, i: userinfo_url(pw, safe=USERINFO_SAFE),
    "query string": lambda pw, i: query_url(pw, first=i % 2 == 0),
    "keyword/value": keyword_dsn,
    "keyword/value in a message": lambda pw, i: f"connection to {keyword_dsn(pw, i)} failed",
    "URL in a message": lambda pw, i: f"cannot reach {userinfo_url(pw, USERINFO_SAFE)}: refused",
}


@settings(max_examples=300, deadline=None)
@given(
    form=st.sampled_from(sorted(FORMS)),
    position=st.integers(0, 3),
    password=PASSWORDS,
    other=PASSWORDS,
)
def test_no_password_survives_redaction(form: str, position: int, password: str, other: str):
    """What redact prints does not depend on the password at all: two connection strings that
    differ only in their password redact to the same text, which still names the server."""
    make = FORMS[form]
    shown = redact(make(password, position))
    assert shown == redact(make(other, position)), (make(password, position), shown)
    assert "****" in shown
    assert "qtis" in shown  # the rest stays readable


def test_redaction_leaves_the_rest_of_a_url_as_it_was():
    url = "postgresql://trader:s3cret@db.example:5432/qtis?sslmode=require"
    assert redact(url) == "postgresql://trader:****@db.example:5432/qtis?sslmode=require"
    socket = "postgresql://postgres@/qtis?host=/tmp/pg"
    assert redact(socket) == socket


def test_keyword_and_query_string_passwords_are_redacted():
    assert redact("host=db port=5432 password=s3cret dbname=qtis") == (
        "host=db port=5432 password=**** dbname=qtis"
    )
    assert redact("host=db password = 'a \\' secret' user=me") == (
        "host=db password = **** user=me"
    )
    assert redact("postgresql:///qtis?host=/tmp&password=s3cret&sslmode=disable") == (
        "postgresql:///qtis?host=/tmp&password=****&sslmode=disable"
    )
