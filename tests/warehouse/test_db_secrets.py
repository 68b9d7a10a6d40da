"""The database password in warehouse.db: split_password gives a child process a URL without it
(and that URL plus PGPASSWORD means to libpq what the original meant); a connection error never
repeats it."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict

from warehouse.db import connect, split_password
from warehouse.schema import migrate

PASSWORDS = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1
)
FORMS = {
    "userinfo": "postgresql://trader:{pw}@db.example:5432/qtis?sslmode=require",
    "userinfo, unix socket": "postgresql://postgres:{pw}@/qtis?host=/tmp/pg",
    "query string": "postgresql:///qtis?host=/tmp/pg&password={pw}&user=trader",
    "query string first": "postgresql://trader@db.example/qtis?password={pw}",
}


def libpq_reads(url: str, env: dict[str, str]) -> dict[str, str]:
    """The connection parameters libpq takes from ``url`` and the ``PGPASSWORD`` of ``env``."""
    params = conninfo_to_dict(url)
    if "PGPASSWORD" in env:
        params.setdefault("password", env["PGPASSWORD"])
    return params


@settings(max_examples=200, deadline=None)
@given(form=st.sampled_from(sorted(FORMS)), password=PASSWORDS, other=PASSWORDS)
def test_the_password_moves_from_the_url_to_the_environment(form, password, other):
    url = FORMS[form].format(pw=quote(password, safe=""))
    bare, env = split_password(url)
    assert env == {"PGPASSWORD": password}
    assert bare == split_password(FORMS[form].format(pw=quote(other, safe="")))[0]
    assert libpq_reads(bare, env) == conninfo_to_dict(url)


def test_a_url_without_password_is_left_as_it_was():
    for url in ("postgresql://postgres@/qtis?host=/tmp/pg", "postgresql:///qtis"):
        assert split_password(url) == (url, {})
    # the embedded server's URL: an empty password is no password
    assert split_password("postgresql://postgres:@/qtis?host=/tmp/pg") == (
        "postgresql://postgres@/qtis?host=/tmp/pg",
        {},
    )


def test_a_sqlalchemy_url_keeps_its_driver():
    bare, env = split_password("postgresql+psycopg://me:s3cret@db/mlflow")
    assert (bare, env) == ("postgresql+psycopg://me@db/mlflow", {"PGPASSWORD": "s3cret"})


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://trader:s3cr%zzet@localhost:1/qtis",  # a "%" typed raw: libpq cannot decode
        "postgresql://trader:s3cr%20et@localhost:1/qtis",  # the server is not there
        "postgresql://trader@localhost:1/qtis?password=s3cr%zzet",
    ],
)
def test_a_connection_error_does_not_repeat_the_password(url: str):
    with pytest.raises(ConnectionError) as caught:
        connect(url, connect_timeout=5)
    assert "s3cr" not in str(caught.value), caught.value
    assert "QTIS_DATABASE_URL" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://trader:s3cr%20et@localhost:1/qtis",  # the server is not there
        "postgresql://trader:s3cr%zzet@localhost:1/qtis",  # a "%" typed raw
        "postgresql://trader:s3cr3t@localhost:1/qtis?foo=bar",  # an option libpq refuses
    ],
)
def test_migrating_an_unreachable_database_is_a_connection_error_without_the_password(url: str):
    """Every `qtis` command migrates first: an external server that is down is the one-line
    ConnectionError the CLI prints (exit 2), not SQLAlchemy's traceback."""
    with pytest.raises(ConnectionError) as caught:
        migrate(url)
    assert "cannot connect to Postgres at" in str(caught.value), caught.value
    assert "s3cr" not in str(caught.value), caught.value
