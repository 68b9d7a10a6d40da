"""Passwords out of printed text: every message, log line and ``config show`` value that may hold
a connection string goes through :func:`redact` before anyone sees it."""

from __future__ import annotations

import re

MASK = "****"

# scheme://user:PASSWORD@ : the password runs to the last "@" before the path, as URL parsers
# read it; a password libpq reads differently is cut wider, never narrower
_USERINFO = re.compile(r"(?P<keep>\b[a-z][a-z0-9+.-]*://[^\s:/?#@]*:)[^\s/]*@", re.IGNORECASE)
# ...?password=VALUE&... in a URL's query string: the value runs to the next parameter
_QUERY = re.compile(r"(?P<keep>[?&]password=)[^&#\s]*", re.IGNORECASE)
# password=VALUE in a libpq keyword/value string (also PGPASSWORD=, QTIS_DBT_PASSWORD=): a value
# in single quotes with backslash escapes, or a run of non-blanks (backslash escapes too)
_KEYWORD = re.compile(
    r"(?P<keep>(?<![?&\w])\w*password\s*=\s*)(?:'(?:\\.|[^'\\])*'?|(?:\\.|[^\s\\])*)\\?",
    re.IGNORECASE,
)

# in this order: a URL's password may itself contain "password="
_RULES = (
    (_USERINFO, rf"\g<keep>{MASK}@"),
    (_QUERY, rf"\g<keep>{MASK}"),
    (_KEYWORD, rf"\g<keep>{MASK}"),
)


def redact(text: str) -> str:
    """``text`` with every password replaced by ``****``: URL userinfo
    (``postgresql://user:secret@host``), query strings (``?password=secret``) and keyword/value
    connection strings (``host=db password='a secret'``), also inside a longer message."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text
