"""Responses schemathesis cannot provoke, checked against the OpenAPI documents.

Run by .ci/schemathesis.sh after schemathesis. schemathesis always sends the valid token
and, with the documents' length limits, never a body over the servers' size limits, so it
cannot see two answers every client can get:

* a protected operation called without a token: 401 with an RFC 6750 `WWW-Authenticate`
  challenge;
* a request body over the limit (64 KiB on auth-server, 256 KiB on posts-server): 413;
* a NUL character in each string parameter and body field, one at a time (PostgreSQL
  refuses NUL in text, so a value passed to the database unchecked answers 500): any
  status but a 5xx.

Each probe checks that the status is the expected one, that the operation's document
lists that status, and that the response's content type is one the document lists for it.

Usage: python3 openapi_probes.py AUTH_URL POSTS_URL TOKEN
Prints one line per probe; exits 1 when any probe fails.
"""

import json
import sys
import urllib.error
import urllib.parse
import urllib.request

LIMITS = {"auth-server": 64 * 1024, "posts-server": 256 * 1024}


def request(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def media_type(content_type):
    return (content_type or "").split(";")[0].strip().lower()


def operations(document):
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method in {"get", "put", "post", "delete", "patch"}:
                yield path, method.upper(), op


def concrete(path):
    # Any value will do for a path parameter: the probes fail before it is looked at.
    out = []
    for part in path.split("/"):
        out.append("probe" if part.startswith("{") else part)
    return "/".join(out)


def check(name, method, path, op, expected, status, headers, failures, extra=None):
    label = f"{name}: {method} {path} -> {status}"
    problems = []
    if expected is None:
        if status >= 500:
            problems.append("a server error")
    elif status != expected:
        problems.append(f"expected {expected}")
    documented = op.get("responses", {})
    if str(status) not in documented and "default" not in documented:
        problems.append(f"{status} is not documented (documented: {', '.join(documented)})")
    else:
        content = documented.get(str(status), documented.get("default", {})).get("content", {})
        ctype = media_type(headers.get("Content-Type"))
        if content and ctype not in {media_type(c) for c in content}:
            problems.append(
                f"content type {ctype!r} is not documented for {status} ({', '.join(content)})"
            )
    if extra:
        problems.extend(extra)
    if problems:
        failures.append(f"{label}: " + "; ".join(problems))
        print(f"FAIL {label}: " + "; ".join(problems))
    else:
        print(f"ok   {label}")


NUL = "a\u0000b"


def resolve(document, schema):
    while isinstance(schema, dict) and "$ref" in schema:
        node = document
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema or {}


def nul_probes(name, base, document, token, failures):
    """Each string parameter and body field in turn holds a NUL; nothing may answer 5xx."""
    auth = {"Authorization": f"Bearer {token}"}
    for path, method, op in operations(document):
        params = [p for p in op.get("parameters", []) if p.get("in") in ("path", "query")]
        for target in params:
            if resolve(document, target.get("schema")).get("type") not in (None, "string"):
                continue
            url_path, query = path, {}
            for p in params:
                value = NUL if p is target else "probe"
                if p["in"] == "path":
                    url_path = url_path.replace("{" + p["name"] + "}", urllib.parse.quote(value))
                elif p is target:
                    query[p["name"]] = value
            url = base + url_path + ("?" + urllib.parse.urlencode(query) if query else "")
            body, headers = None, dict(auth)
            if "application/json" in {media_type(c) for c in op.get("requestBody", {}).get("content", {})}:
                body, headers["Content-Type"] = b'{"title":"t","body":"b"}', "application/json"
            status, headers, _ = request(method, url, body, headers)
            label_path = f"{path} ({target['name']}=NUL)"
            check(name, method, label_path, op, None, status, headers, failures)

        content = op.get("requestBody", {}).get("content", {})
        for ctype, media in content.items():
            schema = resolve(document, media.get("schema"))
            fields = [
                f
                for f, s in schema.get("properties", {}).items()
                if resolve(document, s).get("type") in (None, "string")
            ]
            # Plausible values for the fields a request needs, so that the NUL gets past
            # the first checks; optional fields (client_id, scope, ...) only when probed.
            plausible = {
                "grant_type": "password",
                "username": "nul@example.com",
                "password": "a password",
                "token": "a token",
                "email": "nul@example.com",
                "full_name": "Nul",
                "title": "t",
                "body": "b",
            }
            for field in fields:
                values = {f: plausible[f] for f in fields if f in plausible}
                values[field] = NUL
                if ctype == "application/x-www-form-urlencoded":
                    body = urllib.parse.urlencode(values).encode()
                    headers = {"Content-Type": ctype}
                else:
                    body = json.dumps(values).encode()
                    headers = {"Content-Type": ctype, **auth}
                status, resp_headers, _ = request(method, base + concrete(path), body, headers)
                label_path = f"{path} ({field}=NUL)"
                check(name, method, label_path, op, None, status, resp_headers, failures)


def main():
    auth_url, posts_url, token = sys.argv[1:4]
    failures = []
    for name, base in (("auth-server", auth_url), ("posts-server", posts_url)):
        _, _, raw = request("GET", f"{base}/openapi.json")
        document = json.loads(raw)
        for path, method, op in operations(document):
            url = base + concrete(path)

            if op.get("security"):
                status, headers, _ = request(method, url)
                extra = []
                challenge = headers.get("WWW-Authenticate") or ""
                if not challenge.startswith("Bearer"):
                    extra.append(f"WWW-Authenticate is {challenge!r}, not a Bearer challenge")
                check(name, method, path, op, 401, status, headers, failures, extra)

            if "requestBody" in op:
                content = op["requestBody"].get("content", {})
                ctype = next(iter(content), "application/json")
                if ctype == "application/x-www-form-urlencoded":
                    body = b"x=" + b"a" * LIMITS[name]
                else:
                    body = b'{"x":"' + b"a" * LIMITS[name] + b'"}'
                headers = {"Content-Type": ctype, "Authorization": f"Bearer {token}"}
                status, resp_headers, _ = request(method, url, body, headers)
                check(name, method, path, op, 413, status, resp_headers, failures)

        nul_probes(name, base, document, token, failures)

    print(f"probes: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
