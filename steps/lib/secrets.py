"""Credentials never reach a param, tag, artifact or log line: URLs are masked before use."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^/@:\s]*)(?::(?P<password>[^/@\s]*))?@")
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&;](?:[\w.\-]*(?:password|passwd|pwd|token|secret|signature|sig|credential|apikey|api_key)"
    r"[\w.\-]*)=)(?P<value>[^&;#\s]+)",
    re.IGNORECASE,
)
MASK = "***"


def mask_url(text: str) -> str:
    """`text` with every URL password (and an http(s) token given as user name) replaced by ***.

    postgresql://user:pw@host/db -> postgresql://user:***@host/db;
    https://ghp_token@host/repo -> https://***@host/repo; ?token=abc -> ?token=***."""

    def userinfo(match: re.Match) -> str:
        scheme, user, password = match["scheme"], match["user"], match["password"]
        if password is not None:
            return f"{scheme}{user}:{MASK}@"
        if scheme.lower() in ("http://", "https://") and user:
            return f"{scheme}{MASK}@"
        return match[0]

    return _SECRET_QUERY.sub(lambda m: m["key"] + MASK, _USERINFO.sub(userinfo, text))
