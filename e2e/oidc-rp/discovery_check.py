"""Issue 12 point 7: strict checks of the discovery documents.

- ``/.well-known/openid-configuration`` and ``/.well-known/oauth-authorization-server`` are
  the same document (one source, RFC 8414 §3 and Discovery §4).
- idpyoidc's ``ProviderConfigurationResponse(**doc).verify()`` (OpenID Connect Discovery
  1.0 §3) and authlib's ``OpenIDProviderMetadata`` / RFC 8414 ``AuthorizationServerMetadata``
  validation, with RFC 9207's field, in full strictness on the document of an auth-server
  whose issuer is ``https`` (both libraries refuse a plain-HTTP issuer, as Discovery §3
  says, and CI's servers listen on loopback without TLS); and idpyoidc's check on the
  loopback server the relying-party tests use, with only its HTTPS rule relaxed.

Usage: discovery_check.py LOOPBACK_URL HTTPS_SERVER_URL HTTPS_ISSUER, where HTTPS_SERVER_URL
is where the server configured with issuer HTTPS_ISSUER listens. Optional OIDC_RP_COUNTS.
Prints ``discovery: N passed, M failed``.
"""

from __future__ import annotations

import os
import sys
import traceback

# Strict: authlib must not accept a plain-HTTP issuer here.
os.environ.pop("AUTHLIB_INSECURE_TRANSPORT", None)

import requests
from authlib.oauth2 import rfc8414, rfc9207
from authlib.oidc.discovery import OpenIDProviderMetadata
from idpyoidc.message.oidc import ProviderConfigurationResponse

# The fields CONTRACT.md's "Discovery" lists.
CONTRACT_FIELDS = {
    "issuer": None,
    "authorization_endpoint": None,
    "token_endpoint": None,
    "userinfo_endpoint": None,
    "jwks_uri": None,
    "end_session_endpoint": None,
    "revocation_endpoint": None,
    "introspection_endpoint": None,
    "scopes_supported": None,
    "response_types_supported": ["code"],
    "response_modes_supported": ["query"],
    "grant_types_supported": None,
    "subject_types_supported": ["public"],
    "id_token_signing_alg_values_supported": ["RS256"],
    "token_endpoint_auth_methods_supported": None,
    "code_challenge_methods_supported": ["S256"],
    "claims_supported": None,
    "prompt_values_supported": None,
    "authorization_response_iss_parameter_supported": True,
}
ENDPOINTS = [k for k in CONTRACT_FIELDS if k.endswith("_endpoint") or k == "jwks_uri"]


def log(message: str) -> None:
    print(f"[discovery] {message}", flush=True)


def fetch(base: str, path: str) -> dict:
    response = requests.get(f"{base}{path}", timeout=15)
    response.raise_for_status()
    return response.json()


def main() -> int:
    loopback, https_server, https_issuer = (a.rstrip("/") for a in sys.argv[1:4])
    docs: dict[str, dict] = {}

    def same_document() -> None:
        for name, base in (("loopback", loopback), ("https", https_server)):
            oidc = fetch(base, "/.well-known/openid-configuration")
            oauth = fetch(base, "/.well-known/oauth-authorization-server")
            assert oidc == oauth, f"{name}: the two documents differ: {set(oidc.items()) ^ set(oauth.items())}"
            docs[name] = oidc

    def contract_fields() -> None:
        for name, doc in docs.items():
            for field, expected in CONTRACT_FIELDS.items():
                assert field in doc, f"{name}: {field} is missing"
                if expected is not None:
                    assert doc[field] == expected, f"{name}: {field} is {doc[field]!r}, not {expected!r}"
            assert "openid" in doc["scopes_supported"], "openid is not in scopes_supported"
        doc = docs["https"]
        assert doc["issuer"] == https_issuer, f"issuer {doc['issuer']!r}"
        for field in ENDPOINTS:
            assert doc[field].startswith(f"{https_issuer}/"), f"{field} {doc[field]!r} is not under the issuer"
        assert docs["loopback"]["issuer"] == loopback, f"issuer {docs['loopback']['issuer']!r}"

    def idpyoidc_strict() -> None:
        assert ProviderConfigurationResponse(**docs["https"]).verify() is True

    def idpyoidc_loopback() -> None:
        assert ProviderConfigurationResponse(**docs["loopback"]).verify(allow_http=True) is True

    def authlib_strict() -> None:
        OpenIDProviderMetadata(docs["https"]).validate(metadata_classes=[rfc9207.AuthorizationServerMetadata])
        rfc8414.AuthorizationServerMetadata(docs["https"]).validate(
            metadata_classes=[rfc9207.AuthorizationServerMetadata]
        )

    tests = [
        ("openid-configuration equals oauth-authorization-server (both servers)", same_document),
        ("every field the contract lists, endpoints under the issuer", contract_fields),
        ("idpyoidc ProviderConfigurationResponse.verify() (https issuer, strict)", idpyoidc_strict),
        ("idpyoidc ProviderConfigurationResponse.verify(allow_http) (loopback server)", idpyoidc_loopback),
        ("authlib OpenIDProviderMetadata + RFC 8414 + RFC 9207 validate() (https issuer)", authlib_strict),
    ]
    passed = failed = 0
    for name, run in tests:
        if not docs and run is not same_document:
            failed += 1
            log(f"not ok - {name}: not run (no documents)")
            continue
        try:
            run()
        except Exception:  # noqa: BLE001 - every failure is reported and counted
            failed += 1
            log(f"not ok - {name}:\n{traceback.format_exc()}")
        else:
            passed += 1
            log(f"ok - {name}")
    if os.environ.get("OIDC_RP_COUNTS"):
        with open(os.environ["OIDC_RP_COUNTS"], "a", encoding="utf-8") as f:
            f.write(f"{passed} {failed}\n")
    print(f"discovery: {passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
