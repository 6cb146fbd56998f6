"""Mask credentials in URLs before they are shown, logged or written anywhere.

A stream URL often carries a password (``rtsp://admin:pw@cam/live``) or a signed token
(``https://cdn/x.m3u8?token=...``). Sources keep the real URL only to open it; every name a user
sees (messages, logs, the progress bar, JSONL/CSV ``source``, bench JSON) goes through
``mask_url``. Example::

    >>> mask_url("rtsp://admin:secret@10.0.0.5/live?token=abc&fps=25")
    'rtsp://admin:***@10.0.0.5/live?token=***&fps=25'
"""

from __future__ import annotations

import re

MASK = "***"

# A URL anywhere in a text (a message, a command line): scheme://, then up to a space or quote.
_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>`]+")
# scheme:// then the authority (userinfo@host:port), which ends at the first / ? or #.
_AUTHORITY = re.compile(r"^(?P<scheme>[^:]+://)(?P<authority>[^/?#]*)(?P<rest>.*)$", re.DOTALL)
# Parameter names that hold secrets: access_token, api_key, apikey, passwd, pwd, auth,
# Authorization, client_secret, sig, signature, X-Amz-Signature, X-Amz-Credential, ...
_SECRET_NAME = re.compile(r"token|key|pass|pwd|auth|secret|sig|cred", re.IGNORECASE)


def mask_url(text: str) -> str:
    """Mask the password (or a lone user token) and secret parameters of every URL in ``text``.

    Everything else is kept byte for byte, so a masked name still tells streams apart.

    Args:
        text: A URL, or any text holding URLs (a message, a command line).

    Returns:
        The text with ``user:password@`` as ``user:***@``, a lone ``token@`` as ``***@``, and
        query or fragment parameters whose name looks secret (token, key, password, auth,
        secret, sig, ...) as ``name=***``.
    """
    return _URL_IN_TEXT.sub(lambda match: _mask_one(match.group(0)), text)


def _mask_one(url: str) -> str:
    parts = _AUTHORITY.match(url)
    if parts is None:
        return url
    authority, rest = parts["authority"], parts["rest"]
    if "@" in authority:
        userinfo, host = authority.rsplit("@", 1)
        user, colon, _ = userinfo.partition(":")
        # a lone userinfo is usually a token (https://TOKEN@host), so it is masked whole
        authority = f"{user}:{MASK}@{host}" if colon else f"{MASK}@{host}"
    return parts["scheme"] + authority + _mask_params(rest)


def _mask_params(rest: str) -> str:
    """Mask secret ``name=value`` pairs after ``?`` and after ``#`` (OAuth puts tokens there)."""
    path, hash_mark, fragment = rest.partition("#")
    path, question, query = path.partition("?")
    if question:
        path += question + _mask_pairs(query)
    return path + (hash_mark + _mask_pairs(fragment) if hash_mark else "")


def _mask_pairs(pairs: str) -> str:
    masked = []
    for pair in re.split(r"([&;])", pairs):
        name, equals, value = pair.partition("=")
        secret = equals and value and _SECRET_NAME.search(name)
        masked.append(f"{name}={MASK}" if secret else pair)
    return "".join(masked)
