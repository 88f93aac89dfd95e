"""Issue 12 point 7: the OpenID Connect sign-in driven by Python's authlib as the relying party.

authlib's ``OAuth2Session`` (requests) makes the authorization URL with PKCE S256, state and
nonce, exchanges the code and refreshes; the ID token is verified the way authlib's own
OpenID client does it (``parse_id_token`` in ``authlib.integrations.base_client``): the JWS
with joserfc (authlib's JOSE library; ``authlib.jose`` is deprecated) against the JWKS,
limited to the discovery document's algorithms, then ``authlib.oidc.core.CodeIDToken``
claims validation with the ``nonce``, the ``client_id`` and the access token for ``at_hash``.

The browser is a ``requests.Session`` without redirects: /oauth/authorize -> /login (post the
hidden ``csrf`` and ``request`` fields with ``username`` and ``password``) -> /consent when
shown (``decision=allow``) -> the redirect to the relying party, which is not followed.

Environment (.ci/oidc-rp.sh sets it): AUTH_URL, RP_EMAIL, RP_PASSWORD, RP_USER_ID,
PY_CONFIDENTIAL_ID and PY_CONFIDENTIAL_SECRET (trusted, client_secret_post), PY_PUBLIC_ID
(not trusted: consent is shown), RP_REDIRECT_URI, RP_POST_LOGOUT_REDIRECT_URI; optional
OIDC_RP_COUNTS (append "passed failed"). Prints ``authlib: N passed, M failed``.
"""

from __future__ import annotations

import html
import os
import re
import secrets
import sys
import time
import traceback
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests

# The servers of this test listen on loopback without TLS; authlib refuses plain HTTP
# unless told (its check, not ours, is what this relaxes).
os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"

from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oauth2.rfc6749.errors import MissingCodeException
from authlib.oauth2.rfc6749.parameters import parse_authorization_code_response
from authlib.oidc.core import CodeIDToken, UserInfo
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

AUTH_URL = os.environ["AUTH_URL"].rstrip("/")
EMAIL = os.environ["RP_EMAIL"]
PASSWORD = os.environ["RP_PASSWORD"]
USER_ID = os.environ["RP_USER_ID"]
CONFIDENTIAL_ID = os.environ["PY_CONFIDENTIAL_ID"]
CONFIDENTIAL_SECRET = os.environ["PY_CONFIDENTIAL_SECRET"]
PUBLIC_ID = os.environ["PY_PUBLIC_ID"]
REDIRECT_URI = os.environ["RP_REDIRECT_URI"]
POST_LOGOUT_REDIRECT_URI = os.environ["RP_POST_LOGOUT_REDIRECT_URI"]
SCOPE = "openid profile email"
TIMEOUT = 15


def log(message: str) -> None:
    print(f"[authlib] {message}", flush=True)


class Failure(AssertionError):
    pass


def check(condition: object, message: str, detail: object = None) -> None:
    if not condition:
        raise Failure(message if detail is None else f"{message}: {detail!r}")


# --- the browser ----------------------------------------------------------------------------


def attributes(tag: str) -> dict[str, str]:
    return {k.lower(): html.unescape(v) for k, v in re.findall(r'\b([a-z-]+)="([^"]*)"', tag, flags=re.IGNORECASE)}


class Form:
    """The page's one form: its action, hidden fields, other inputs' names, buttons."""

    def __init__(self, page: str, url: str):
        form = re.search(r"<form\b[^>]*>", page, flags=re.IGNORECASE)
        check(form, "the page has no form", page[:500])
        self.action = urljoin(url, attributes(form.group(0)).get("action", url))
        self.fields: dict[str, str] = {}
        self.inputs: set[str] = set()
        for tag in re.findall(r"<input\b[^>]*>", page, flags=re.IGNORECASE):
            attrs = attributes(tag)
            if attrs.get("type") == "hidden" and attrs.get("name"):
                self.fields[attrs["name"]] = attrs.get("value", "")
            elif attrs.get("name"):
                self.inputs.add(attrs["name"])
        self.buttons = {
            f"{a['name']}={a.get('value', '')}"
            for a in map(attributes, re.findall(r"<button\b[^>]*>", page, flags=re.IGNORECASE))
            if a.get("name")
        }


def same_endpoint(url: str, expected: str) -> bool:
    a, b = urlsplit(url), urlsplit(expected)
    return (a.scheme, a.netloc, a.path) == (b.scheme, b.netloc, b.path)


def walk(browser: requests.Session, url: str, target: str = REDIRECT_URI) -> tuple[str, list[str]]:
    """Follows the browser from ``url`` to the redirect to ``target``, signing in and
    allowing on the way; returns that URL and the pages shown."""
    shown: list[str] = []
    response = browser.get(url, allow_redirects=False, timeout=TIMEOUT)
    for _ in range(12):
        if response.status_code in (302, 303, 307):
            location = urljoin(url, response.headers["Location"])
            if same_endpoint(location, target):
                return location, shown
            url = location
            response = browser.get(url, allow_redirects=False, timeout=TIMEOUT)
            continue
        check(response.status_code == 200, f"{urlsplit(url).path} answered {response.status_code}", response.text[:500])
        page = response.text
        form = Form(page, url)
        action, fields = form.action, form.fields
        if "password" in form.inputs:
            shown.append("login")
            check(fields.get("csrf") and fields.get("request"), "login form without csrf/request", fields)
            data = {**fields, "username": EMAIL, "password": PASSWORD}
        elif "decision=allow" in form.buttons:
            shown.append("consent")
            data = {**fields, "decision": "allow"}
        elif "decision=logout" in form.buttons:
            shown.append("logout")
            data = {**fields, "decision": "logout"}
        else:
            raise Failure(f"unexpected page {urlsplit(url).path}: {page[:500]}")
        url = action
        response = browser.post(url, data=data, allow_redirects=False, timeout=TIMEOUT)
    raise Failure("too many steps before the redirect to the relying party")


# --- the relying party ---------------------------------------------------------------------


class RelyingParty:
    def __init__(self, metadata: dict, client_id: str, client_secret: str | None = None):
        self.metadata = metadata
        self.client_id = client_id
        self.session = OAuth2Session(
            client_id,
            client_secret,
            scope=SCOPE,
            redirect_uri=REDIRECT_URI,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_post" if client_secret else "none",
        )
        self.jwks = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=TIMEOUT).json())

    def authorization_url(self, **extra: str) -> tuple[str, str, str, str]:
        verifier = generate_token(64)
        nonce = generate_token(32)
        url, state = self.session.create_authorization_url(
            self.metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce, **extra
        )
        check("code_challenge_method=S256" in url, "no S256 code challenge", url)
        return url, state, verifier, nonce

    def sign_in(self, browser: requests.Session, **extra: str) -> tuple[dict, dict, list[str]]:
        """The whole code flow; returns the token, the validated ID token claims, the pages."""
        url, state, verifier, nonce = self.authorization_url(**extra)
        callback, shown = walk(browser, url)
        query = parse_qs(urlsplit(callback).query)
        check(query.get("iss") == [self.metadata["issuer"]], "RFC 9207 iss", callback)
        token = self.session.fetch_token(
            self.metadata["token_endpoint"],
            authorization_response=callback,
            state=state,
            code_verifier=verifier,
        )
        claims = self.id_token_claims(token, nonce)
        check(claims.get("nonce") == nonce, "nonce", claims.get("nonce"))
        return token, claims, shown

    def id_token_claims(self, token: dict, nonce: str | None) -> CodeIDToken:
        check("id_token" in token, "no id_token in the token response", list(token))
        registry = JWSRegistry(algorithms=self.metadata["id_token_signing_alg_values_supported"])
        decoded = jwt.decode(token["id_token"], self.jwks, registry=registry)
        check(decoded.header.get("typ") == "JWT" and decoded.header.get("kid"), "header", decoded.header)
        options = {
            "iss": {"essential": True, "value": self.metadata["issuer"]},
            "aud": {"essential": True, "value": self.client_id},
            "sub": {"essential": True, "value": USER_ID},
            "auth_time": {"essential": True},
            "at_hash": {"essential": True},
            "sid": {"essential": True},
        }
        params = {"nonce": nonce, "client_id": self.client_id, "access_token": token["access_token"]}
        claims = CodeIDToken(decoded.claims, decoded.header, options, params)
        claims.validate(leeway=30)
        check(claims.get("azp") == self.client_id, "azp", claims.get("azp"))
        return claims

    def userinfo(self) -> UserInfo:
        response = self.session.get(self.metadata["userinfo_endpoint"], timeout=TIMEOUT)
        check(response.status_code == 200, "UserInfo status", (response.status_code, response.text))
        return UserInfo(response.json())

    def refresh(self) -> dict:
        return self.session.refresh_token(self.metadata["token_endpoint"])

    def logout_url(self, id_token_hint: str | None, state: str) -> str:
        params = {"post_logout_redirect_uri": POST_LOGOUT_REDIRECT_URI, "state": state, "client_id": self.client_id}
        if id_token_hint:
            params["id_token_hint"] = id_token_hint
        return f"{self.metadata['end_session_endpoint']}?{urlencode(params)}"


def expect_error_response(callback: str, state: str, error: str) -> None:
    try:
        parse_authorization_code_response(callback, state=state)
    except MissingCodeException:
        pass
    else:
        raise Failure(f"expected {error}, got a code: {callback}")
    query = parse_qs(urlsplit(callback).query)
    check(query.get("error") == [error], f"expected {error}", callback)
    check(query.get("state") == [state], "state not returned", callback)
    check(query.get("iss") == [AUTH_URL], "iss not returned", callback)


def expect_invalid_grant(rp: RelyingParty) -> None:
    try:
        rp.refresh()
    except OAuthError as e:
        check(e.error == "invalid_grant", "expected invalid_grant", e.error)
        return
    raise Failure("the refresh token still works")


# --- the tests -------------------------------------------------------------------------------

ctx: dict = {}


def test_discovery() -> None:
    doc = requests.get(f"{AUTH_URL}/.well-known/openid-configuration", timeout=TIMEOUT).json()
    check(doc["issuer"] == AUTH_URL, "issuer", doc["issuer"])
    ctx["metadata"] = doc


def test_public_client() -> None:
    rp = RelyingParty(ctx["metadata"], PUBLIC_ID)
    browser = requests.Session()
    before = int(time.time())
    token, claims, shown = rp.sign_in(browser)
    check(shown == ["login", "consent"], "pages shown", shown)
    check(claims["auth_time"] >= before - 5, "auth_time before the sign-in", claims["auth_time"])
    check(token.get("refresh_token"), "no refresh token", list(token))
    # The JWS is really verified: one altered signature byte is refused.
    head, payload, sig = token["id_token"].split(".")
    i = len(sig) // 2
    forged = f"{head}.{payload}.{sig[:i]}{'B' if sig[i] == 'A' else 'A'}{sig[i + 1 :]}"
    try:
        rp.id_token_claims({**token, "id_token": forged}, nonce=claims["nonce"])
    except BadSignatureError:
        pass
    else:
        raise Failure("an ID token with an altered signature was accepted")
    ctx.update(public=rp, public_browser=browser, public_claims=claims, public_token=token)


def test_userinfo() -> None:
    info = ctx["public"].userinfo()
    check(info["sub"] == ctx["public_claims"]["sub"], "UserInfo sub", info)
    check(info.get("email") == EMAIL and info.get("email_verified") is False, "email claims", info)
    check(isinstance(info.get("name"), str) and isinstance(info.get("updated_at"), int), "profile claims", info)


def test_refresh() -> None:
    rp, first = ctx["public"], ctx["public_claims"]
    old = ctx["public_token"]["refresh_token"]
    token = rp.refresh()
    check(token.get("refresh_token") and token["refresh_token"] != old, "refresh token not rotated")
    claims = rp.id_token_claims(token, nonce=None)
    check("nonce" not in claims, "a refreshed ID token has a nonce", claims.get("nonce"))
    check(claims["sub"] == first["sub"] and claims["auth_time"] == first["auth_time"], "sub/auth_time", claims)
    ctx["public_id_token"] = token["id_token"]


def test_logout_with_hint() -> None:
    rp, browser = ctx["public"], ctx["public_browser"]
    state = secrets.token_urlsafe(16)
    back, shown = walk(browser, rp.logout_url(ctx["public_id_token"], state), POST_LOGOUT_REDIRECT_URI)
    check(shown == [], "a valid id_token_hint still asked", shown)
    check(parse_qs(urlsplit(back).query).get("state") == [state], "state not returned", back)
    expect_invalid_grant(rp)
    url, state, _, _ = rp.authorization_url(prompt="none")
    callback, _ = walk(browser, url)
    expect_error_response(callback, state, "login_required")


def test_confidential_client() -> None:
    rp = RelyingParty(ctx["metadata"], CONFIDENTIAL_ID, CONFIDENTIAL_SECRET)
    browser = requests.Session()
    _, claims, shown = rp.sign_in(browser)
    check(shown == ["login"], "pages shown (trusted: no consent)", shown)
    # Single sign-on: no page at all, the same session and login time.
    _, claims2, shown2 = rp.sign_in(browser, prompt="none")
    check(shown2 == [], "prompt=none showed pages", shown2)
    check(claims2["sid"] == claims["sid"] and claims2["auth_time"] == claims["auth_time"], "sid/auth_time", claims2)
    # prompt=none in a browser without a session.
    url, state, _, _ = rp.authorization_url(prompt="none")
    callback, _ = walk(requests.Session(), url)
    expect_error_response(callback, state, "login_required")
    # Logout confirmed on the form (no hint), then the refresh token is dead.
    logout_state = secrets.token_urlsafe(16)
    back, shown3 = walk(browser, rp.logout_url(None, logout_state), POST_LOGOUT_REDIRECT_URI)
    check(shown3 == ["logout"], "pages shown", shown3)
    check(parse_qs(urlsplit(back).query).get("state") == [logout_state], "state not returned", back)
    expect_invalid_grant(rp)


TESTS = [
    ("discovery", None, "discovery document fetched", test_discovery),
    (
        "public",
        "discovery",
        (
            "public client (none, consent shown): PKCE S256 + state + nonce, login, consent, "
            "fetch_token, ID token JWS against the JWKS, CodeIDToken with nonce and at_hash"
        ),
        test_public_client,
    ),
    ("userinfo", "public", "UserInfo: sub, email and profile claims", test_userinfo),
    (
        "refresh",
        "public",
        "refresh: rotated refresh token, new ID token (same sub and auth_time, no nonce) validated",
        test_refresh,
    ),
    (
        "logout",
        "refresh",
        (
            "logout with id_token_hint + post_logout_redirect_uri + state; refresh token dead; "
            "prompt=none then login_required"
        ),
        test_logout_with_hint,
    ),
    (
        "confidential",
        "discovery",
        (
            "confidential client (client_secret_post, trusted): no consent, prompt=none SSO, "
            "login_required without a session, confirmed logout"
        ),
        test_confidential_client,
    ),
]


def main() -> int:
    passed = failed = 0
    done: set[str] = set()
    for key, needs, name, run in TESTS:
        if needs and needs not in done:
            failed += 1
            log(f"not ok - {name}: not run (needs {needs})")
            continue
        try:
            run()
        except Exception:  # noqa: BLE001 - every failure is reported and counted
            failed += 1
            log(f"not ok - {name}:\n{traceback.format_exc()}")
        else:
            passed += 1
            done.add(key)
            log(f"ok - {name}")
    if os.environ.get("OIDC_RP_COUNTS"):
        with open(os.environ["OIDC_RP_COUNTS"], "a", encoding="utf-8") as f:
            f.write(f"{passed} {failed}\n")
    print(f"authlib: {passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
