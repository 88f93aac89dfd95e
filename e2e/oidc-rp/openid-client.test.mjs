// Issue 12 point 7: the whole OpenID Connect sign-in driven by Node's `openid-client` 6 as an
// unmodified relying party, with its non-repudiation checks on (every ID token's signature
// is verified against the JWKS), against a running auth-server.
//
// The test is the browser too, with plain HTTP: it follows /oauth/authorize to /login,
// posts the form (the hidden `csrf` and `request` fields, `username`, `password`) with the
// cookies it was given, allows on /consent when that is shown, and stops at the redirect to
// the relying party's redirect_uri (nothing listens there; the URL is all a relying party
// gets).
//
// Expects (.ci/oidc-rp.sh sets them):
//   AUTH_URL                      the issuer, e.g. http://127.0.0.1:8000
//   POSTS_URL                     posts-server, which accepts this issuer's access tokens
//   RP_EMAIL, RP_PASSWORD         a signed-up user
//   RP_USER_ID                    that user's id (the expected `sub`)
//   NODE_CONFIDENTIAL_ID, NODE_CONFIDENTIAL_SECRET
//                                 a confidential client, not trusted (consent is shown),
//                                 with the scopes openid profile email posts:read
//   NODE_PUBLIC_ID                a public client, trusted (no consent page)
//   RP_REDIRECT_URI, RP_POST_LOGOUT_REDIRECT_URI
//                                 registered for both clients
// Optional: OIDC_RP_COUNTS (append "passed failed" there for the caller's summary).
//
// Prints one line per test and `openid-client: N passed, M failed`; exits 1 on a failure.

import { createHash } from "node:crypto";
import { appendFileSync } from "node:fs";
import * as client from "openid-client";

const AUTH_URL = requireEnv("AUTH_URL").replace(/\/+$/, "");
const POSTS_URL = requireEnv("POSTS_URL").replace(/\/+$/, "");
const EMAIL = requireEnv("RP_EMAIL");
const PASSWORD = requireEnv("RP_PASSWORD");
const USER_ID = requireEnv("RP_USER_ID");
const CONFIDENTIAL_ID = requireEnv("NODE_CONFIDENTIAL_ID");
const CONFIDENTIAL_SECRET = requireEnv("NODE_CONFIDENTIAL_SECRET");
const PUBLIC_ID = requireEnv("NODE_PUBLIC_ID");
const REDIRECT_URI = requireEnv("RP_REDIRECT_URI");
const POST_LOGOUT_REDIRECT_URI = requireEnv("RP_POST_LOGOUT_REDIRECT_URI");
const SCOPE = "openid profile email";
// Asked for with max_age, so the library must see and check `auth_time`.
const MAX_AGE = 600;

function requireEnv(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return value;
}

function log(message) {
  console.log(`[openid-client] ${message}`);
}

function assert(condition, message, detail) {
  if (!condition) {
    throw new Error(detail === undefined ? message : `${message}: ${JSON.stringify(detail)}`);
  }
}

function nowSeconds() {
  return Math.floor(Date.now() / 1000);
}

// --- the browser: cookies, redirects, the sign-in forms ---------------------------------

/** Cookies of one browser (all ours are host-only with Path=/). */
class CookieJar {
  #cookies = new Map();

  header() {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join("; ");
  }

  store(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(";").map((s) => s.trim());
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      const expired = attributes.some((a) => {
        const [key, val = ""] = a.split("=");
        if (key.toLowerCase() === "max-age") return Number(val) <= 0;
        if (key.toLowerCase() === "expires") return Date.parse(val) <= Date.now();
        return false;
      });
      if (expired) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }
}

async function browse(jar, url, { method = "GET", form } = {}) {
  const headers = { Accept: "text/html" };
  const cookie = jar.header();
  if (cookie) headers.Cookie = cookie;
  let body;
  if (form) {
    headers["Content-Type"] = "application/x-www-form-urlencoded";
    body = new URLSearchParams(form).toString();
  }
  const response = await fetch(url, { method, headers, body, redirect: "manual" });
  jar.store(response);
  const text = await response.text();
  const location = response.headers.get("location");
  return {
    status: response.status,
    text,
    location: location ? new URL(location, url) : undefined,
  };
}

function unescapeHtml(s) {
  return s
    .replace(/&quot;/g, '"')
    .replace(/&#x27;|&#39;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}

function attributes(tag) {
  return Object.fromEntries(
    [...tag.matchAll(/\b([a-z-]+)="([^"]*)"/gi)].map((m) => [m[1].toLowerCase(), unescapeHtml(m[2])]),
  );
}

/**
 * The page's one form: its action, its hidden fields, the names of its other inputs, and
 * its buttons as `name=value`.
 */
function parseForm(html, pageUrl) {
  const form = html.match(/<form\b[^>]*>/i);
  assert(form, "the page has no form", html.slice(0, 500));
  const action = attributes(form[0]).action;
  const fields = {};
  const inputs = new Set();
  for (const [tag] of html.matchAll(/<input\b[^>]*>/gi)) {
    const attrs = attributes(tag);
    if (attrs.type === "hidden" && attrs.name) fields[attrs.name] = attrs.value ?? "";
    else if (attrs.name) inputs.add(attrs.name);
  }
  const buttons = new Set();
  for (const [tag] of html.matchAll(/<button\b[^>]*>/gi)) {
    const attrs = attributes(tag);
    if (attrs.name) buttons.add(`${attrs.name}=${attrs.value ?? ""}`);
  }
  return { action: new URL(action ?? pageUrl.href, pageUrl), fields, inputs, buttons };
}

function isRedirect(status) {
  return status === 302 || status === 303 || status === 307;
}

function isCallback(url, expected) {
  const want = new URL(expected);
  return url.origin === want.origin && url.pathname === want.pathname;
}

/**
 * Walks a browser from `start` to the redirect to `target` (the relying party), signing in
 * and allowing on the way when asked. Returns the final URL and the pages that were shown.
 */
async function walk(jar, start, target = REDIRECT_URI) {
  const shown = [];
  let page = await browse(jar, start);
  let url = start;
  for (let step = 0; step < 12; step += 1) {
    if (isRedirect(page.status)) {
      assert(page.location, `a ${page.status} without Location`);
      if (isCallback(page.location, target)) return { url: page.location, shown };
      url = page.location;
      page = await browse(jar, url);
      continue;
    }
    assert(page.status === 200, `${url.pathname} answered ${page.status}`, page.text.slice(0, 500));
    const { action, fields, inputs, buttons } = parseForm(page.text, url);
    if (inputs.has("password")) {
      shown.push("login");
      assert(fields.csrf, "the login form has no csrf field");
      assert(fields.request, "the login form has no request field");
      page = await browse(jar, action, {
        method: "POST",
        form: { ...fields, username: EMAIL, password: PASSWORD },
      });
    } else if (buttons.has("decision=allow")) {
      shown.push("consent");
      page = await browse(jar, action, { method: "POST", form: { ...fields, decision: "allow" } });
    } else if (buttons.has("decision=logout")) {
      shown.push("logout");
      page = await browse(jar, action, { method: "POST", form: { ...fields, decision: "logout" } });
    } else {
      throw new Error(`unexpected page ${url.pathname}: ${page.text.slice(0, 500)}`);
    }
    url = action;
  }
  throw new Error("too many steps before the redirect to the relying party");
}

// --- the relying party ----------------------------------------------------------------------

async function configure(clientId, clientSecret, fetchImpl) {
  const execute = [client.allowInsecureRequests, client.enableNonRepudiationChecks];
  const options = { execute, ...(fetchImpl && { [client.customFetch]: fetchImpl }) };
  const auth = clientSecret ? client.ClientSecretBasic(clientSecret) : client.None();
  const metadata = {
    redirect_uris: [REDIRECT_URI],
    post_logout_redirect_uris: [POST_LOGOUT_REDIRECT_URI],
    require_auth_time: true,
    id_token_signed_response_alg: "RS256",
    token_endpoint_auth_method: clientSecret ? "client_secret_basic" : "none",
  };
  return client.discovery(new URL(AUTH_URL), clientId, metadata, auth, options);
}

/** An authorization request with PKCE, state and nonce, and what checks its response. */
async function authorizationRequest(config, extra = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const checks = {
    pkceCodeVerifier: verifier,
    expectedState: client.randomState(),
    expectedNonce: client.randomNonce(),
    maxAge: MAX_AGE,
  };
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state: checks.expectedState,
    nonce: checks.expectedNonce,
    max_age: String(MAX_AGE),
    ...extra,
  });
  return { url, checks };
}

function atHash(accessToken) {
  // OpenID Connect Core §3.1.3.6: the left half of SHA-256 (RS256), base64url.
  return createHash("sha256")
    .update(accessToken, "ascii")
    .digest()
    .subarray(0, 16)
    .toString("base64url");
}

function jwtHeader(jwt) {
  return JSON.parse(Buffer.from(jwt.split(".")[0], "base64url").toString("utf8"));
}

/** What the library leaves to the relying party, checked here (Core §2, §3.1.3.7). */
function checkIdToken(tokens, clientId, { nonce, signedInAfter }) {
  const claims = tokens.claims();
  assert(claims, "no ID token in the token response");
  const header = jwtHeader(tokens.id_token);
  assert(header.alg === "RS256" && header.typ === "JWT" && header.kid, "ID token header", header);
  assert(claims.iss === AUTH_URL, "iss", claims.iss);
  assert(claims.sub === USER_ID, "sub is not the user's id", claims.sub);
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  assert(aud.length === 1 && aud[0] === clientId, "aud", claims.aud);
  assert(claims.azp === clientId, "azp", claims.azp);
  assert(claims.nonce === nonce, "nonce", claims.nonce);
  assert(
    claims.at_hash === atHash(tokens.access_token),
    "at_hash does not match the access token",
    claims.at_hash,
  );
  assert(typeof claims.sid === "string" && claims.sid.length > 0, "sid", claims.sid);
  assert(Number.isInteger(claims.auth_time), "auth_time", claims.auth_time);
  assert(claims.auth_time <= nowSeconds() + 5, "auth_time is in the future", claims.auth_time);
  if (signedInAfter !== undefined) {
    assert(
      claims.auth_time >= signedInAfter - 5,
      "auth_time is before the sign-in",
      claims.auth_time,
    );
  }
  assert(claims.exp > nowSeconds() && claims.iat <= nowSeconds() + 5, "exp/iat", claims);
  assert(tokens.token_type.toLowerCase() === "bearer", "token_type", tokens.token_type);
  assert(tokens.scope?.split(" ").includes("openid"), "scope", tokens.scope);
  return claims;
}

// --- the tests --------------------------------------------------------------------------------

const state = {};

const tests = [
  [
    "discovery",
    null,
    "discovery: openid-client accepts the provider metadata (confidential and public client)",
    async () => {
      state.confidential = await configure(CONFIDENTIAL_ID, CONFIDENTIAL_SECRET);
      state.public = await configure(PUBLIC_ID);
      const meta = state.confidential.serverMetadata();
      assert(meta.issuer === AUTH_URL, "issuer", meta.issuer);
      assert(meta.supportsPKCE("S256"), "PKCE S256 is not advertised");
      assert(
        meta.authorization_response_iss_parameter_supported === true,
        "RFC 9207 not advertised",
      );
      assert(meta.end_session_endpoint, "no end_session_endpoint");
    },
  ],
  [
    "confidential",
    "discovery",
    "confidential client: PKCE + state + nonce + max_age, login and consent pages, code exchange (client_secret_basic), ID token signature and claims",
    async () => {
      const config = state.confidential;
      state.jar = new CookieJar();
      const { url, checks } = await authorizationRequest(config);
      const before = nowSeconds();
      const { url: callback, shown } = await walk(state.jar, url);
      assert(shown.join(",") === "login,consent", "pages shown", shown);
      assert(callback.searchParams.get("iss") === AUTH_URL, "RFC 9207 iss", callback.href);
      const tokens = await client.authorizationCodeGrant(config, callback, checks);
      state.claims = checkIdToken(tokens, CONFIDENTIAL_ID, {
        nonce: checks.expectedNonce,
        signedInAfter: before,
      });
      assert(tokens.refresh_token, "no refresh token");
      state.tokens = tokens;
    },
  ],
  [
    "userinfo",
    "confidential",
    "UserInfo: fetchUserInfo with the expected subject, profile and email claims; the ID token is refused there and inactive at introspection",
    async () => {
      const info = await client.fetchUserInfo(
        state.confidential,
        state.tokens.access_token,
        state.claims.sub,
      );
      assert(info.sub === USER_ID, "sub", info);
      assert(info.email === EMAIL && info.email_verified === false, "email claims", info);
      assert(
        typeof info.name === "string" && Number.isInteger(info.updated_at),
        "profile claims",
        info,
      );
      // RFC 6750 §3.1: the ID token is no access token, and the challenge says so.
      try {
        await client.fetchUserInfo(state.confidential, state.tokens.id_token, state.claims.sub);
        throw new Error("UserInfo accepted the ID token as a Bearer token");
      } catch (e) {
        assert(e instanceof client.WWWAuthenticateChallengeError, `expected a challenge, got ${e}`);
        const [challenge] = e.cause;
        assert(e.status === 401 && challenge?.scheme === "bearer", "challenge", e.cause);
        assert(challenge.parameters.error === "invalid_token", "challenge error", challenge);
      }
      // RFC 7662 with client_secret_basic: the access token is active, the ID token is not one.
      const active = await client.tokenIntrospection(state.confidential, state.tokens.access_token);
      assert(active.active === true && active.sub === USER_ID, "introspection", active);
      assert(active.client_id === CONFIDENTIAL_ID, "introspection client_id", active);
      const idToken = await client.tokenIntrospection(state.confidential, state.tokens.id_token);
      assert(idToken.active === false, "an ID token introspected as active", idToken);
    },
  ],
  [
    "refresh",
    "confidential",
    "refresh: refreshTokenGrant rotates the refresh token and returns a verified ID token with the same sub, aud and auth_time, no nonce",
    async () => {
      const refreshed = await client.refreshTokenGrant(
        state.confidential,
        state.tokens.refresh_token,
      );
      const claims = refreshed.claims();
      assert(claims, "no ID token on refresh");
      assert(claims.iss === AUTH_URL && claims.sub === state.claims.sub, "iss/sub changed", claims);
      assert(
        claims.aud === state.claims.aud || claims.aud?.[0] === CONFIDENTIAL_ID,
        "aud changed",
        claims,
      );
      assert(claims.auth_time === state.claims.auth_time, "auth_time changed", claims);
      assert(claims.nonce === undefined, "a refreshed ID token has a nonce", claims);
      assert(claims.at_hash === atHash(refreshed.access_token), "at_hash", claims);
      assert(
        refreshed.refresh_token && refreshed.refresh_token !== state.tokens.refresh_token,
        "not rotated",
      );
      state.tokens = refreshed;
    },
  ],
  [
    "prompt-none",
    "confidential",
    "prompt=none with the session: a code without any page, same sid and auth_time (consent remembered)",
    async () => {
      const config = state.confidential;
      const { url, checks } = await authorizationRequest(config, { prompt: "none" });
      const { url: callback, shown } = await walk(state.jar, url);
      assert(shown.length === 0, "pages shown", shown);
      const tokens = await client.authorizationCodeGrant(config, callback, checks);
      const claims = checkIdToken(tokens, CONFIDENTIAL_ID, { nonce: checks.expectedNonce });
      assert(claims.sid === state.claims.sid, "another sid", claims);
      assert(claims.auth_time === state.claims.auth_time, "another auth_time", claims);
      state.idTokenHint = tokens.id_token;
      // The same code again: refused.
      await expectGrantError(
        () => client.authorizationCodeGrant(config, callback, checks),
        "invalid_grant",
      );
    },
  ],
  [
    "non-repudiation",
    "prompt-none",
    "non-repudiation checks are on: an ID token whose signature was altered in transit is refused",
    async () => {
      // The same relying party, but its token responses pass through a fetch that changes
      // one signature byte: if the library did not verify the JWS, this would pass.
      const tamper = async (url, options) => {
        const response = await fetch(url, options);
        if (new URL(url).pathname !== "/oauth/token" || !response.ok) return response;
        const body = await response.json();
        const [h, p, sig] = body.id_token.split(".");
        const i = Math.floor(sig.length / 2);
        body.id_token = `${h}.${p}.${sig.slice(0, i)}${sig[i] === "A" ? "B" : "A"}${sig.slice(i + 1)}`;
        const headers = new Headers(response.headers);
        headers.delete("content-length");
        return new Response(JSON.stringify(body), { status: response.status, headers });
      };
      const config = await configure(CONFIDENTIAL_ID, CONFIDENTIAL_SECRET, tamper);
      const { url, checks } = await authorizationRequest(config, { prompt: "none" });
      const { url: callback } = await walk(state.jar, url);
      try {
        await client.authorizationCodeGrant(config, callback, checks);
      } catch (e) {
        // openid-client wraps what oauth4webapi found.
        const messages = [];
        for (let err = e; err instanceof Error; err = err.cause) messages.push(err.message);
        assert(
          messages.some((m) => /signature verification failed/.test(m)),
          "expected a signature error",
          messages,
        );
        return;
      }
      throw new Error("an ID token with a bad signature was accepted");
    },
  ],
  [
    "new-scope",
    "prompt-none",
    "a scope not yet allowed: prompt=none gives consent_required; then only the consent page; the access token works at posts-server",
    async () => {
      const config = state.confidential;
      const scope = "openid posts:read";
      const quiet = await authorizationRequest(config, { prompt: "none", scope });
      const { url: refused, shown: none } = await walk(state.jar, quiet.url);
      assert(none.length === 0, "pages shown", none);
      await expectAuthorizationError(config, refused, quiet.checks, "consent_required");
      const { url, checks } = await authorizationRequest(config, { scope });
      const { url: callback, shown } = await walk(state.jar, url);
      assert(shown.join(",") === "consent", "pages shown", shown);
      const tokens = await client.authorizationCodeGrant(config, callback, checks);
      checkIdToken(tokens, CONFIDENTIAL_ID, { nonce: checks.expectedNonce });
      assert(
        tokens.scope.split(" ").sort().join(" ") === "openid posts:read",
        "scope",
        tokens.scope,
      );
      const postsMe = new URL(`${POSTS_URL}/posts/me`);
      const response = await client.fetchProtectedResource(
        config,
        tokens.access_token,
        postsMe,
        "GET",
      );
      const body = await response.text();
      assert(response.status === 200, `posts-server answered ${response.status}`, body);
      assert(Array.isArray(JSON.parse(body).items), "no items from /posts/me", body);
    },
  ],
  [
    "max-age",
    "prompt-none",
    "max_age=1 two seconds after the sign-in: the login page again, a later auth_time, the same session (sid)",
    async () => {
      const config = state.confidential;
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const { url, checks } = await authorizationRequest(config, { max_age: "1" });
      checks.maxAge = 1;
      const { url: callback, shown } = await walk(state.jar, url);
      assert(shown.join(",") === "login", "pages shown", shown);
      const tokens = await client.authorizationCodeGrant(config, callback, checks);
      const claims = checkIdToken(tokens, CONFIDENTIAL_ID, { nonce: checks.expectedNonce });
      assert(claims.auth_time > state.claims.auth_time, "auth_time did not move", claims);
      assert(claims.sid === state.claims.sid, "a new sid for the same user", claims);
    },
  ],
  [
    "no-session",
    "discovery",
    "prompt=none without a session: login_required (state and iss checked by the library)",
    async () => {
      const config = state.confidential;
      const { url, checks } = await authorizationRequest(config, { prompt: "none" });
      const { url: callback, shown } = await walk(new CookieJar(), url);
      assert(shown.length === 0, "pages shown", shown);
      await expectAuthorizationError(config, callback, checks, "login_required");
    },
  ],
  [
    "logout",
    "prompt-none",
    "logout: buildEndSessionUrl with id_token_hint, post_logout_redirect_uri and state; back with state; refresh token dead; session ended",
    async () => {
      const config = state.confidential;
      const logoutState = client.randomState();
      const url = client.buildEndSessionUrl(config, {
        id_token_hint: state.idTokenHint,
        post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI,
        state: logoutState,
      });
      const { url: back, shown } = await walk(state.jar, url, POST_LOGOUT_REDIRECT_URI);
      assert(shown.length === 0, "a valid id_token_hint still asked", shown);
      assert(back.searchParams.get("state") === logoutState, "state not returned", back.href);
      await expectGrantError(
        () => client.refreshTokenGrant(config, state.tokens.refresh_token),
        "invalid_grant",
      );
      const { url: authorize, checks } = await authorizationRequest(config, { prompt: "none" });
      const { url: callback } = await walk(state.jar, authorize);
      await expectAuthorizationError(config, callback, checks, "login_required");
    },
  ],
  [
    "public",
    "discovery",
    "public client (token_endpoint_auth_method none, trusted): login without consent, code exchange, refresh, logout confirmed without a hint",
    async () => {
      const config = state.public;
      const jar = new CookieJar();
      const { url, checks } = await authorizationRequest(config);
      const { url: callback, shown } = await walk(jar, url);
      assert(shown.join(",") === "login", "pages shown", shown);
      const tokens = await client.authorizationCodeGrant(config, callback, checks);
      const claims = checkIdToken(tokens, PUBLIC_ID, { nonce: checks.expectedNonce });
      const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
      assert(refreshed.claims()?.sub === claims.sub, "refreshed sub", refreshed.claims());
      // Without id_token_hint the user confirms on a CSRF-protected form first.
      const logoutState = client.randomState();
      const logout = client.buildEndSessionUrl(config, {
        post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI,
        state: logoutState,
      });
      const { url: back, shown: logoutPages } = await walk(jar, logout, POST_LOGOUT_REDIRECT_URI);
      assert(logoutPages.join(",") === "logout", "pages shown", logoutPages);
      assert(back.searchParams.get("state") === logoutState, "state not returned", back.href);
      await expectGrantError(
        () => client.refreshTokenGrant(config, refreshed.refresh_token),
        "invalid_grant",
      );
    },
  ],
];

async function expectAuthorizationError(config, callback, checks, error) {
  try {
    await client.authorizationCodeGrant(config, callback, checks);
  } catch (e) {
    assert(
      e instanceof client.AuthorizationResponseError,
      `expected an authorization error, got ${e}`,
    );
    assert(e.error === error, `expected ${error}`, e.error);
    return;
  }
  throw new Error(`expected ${error}, got a code`);
}

async function expectGrantError(grant, error) {
  try {
    await grant();
  } catch (e) {
    assert(e instanceof client.ResponseBodyError, `expected a token error, got ${e}`);
    assert(e.error === error, `expected ${error}`, e.error);
    return;
  }
  throw new Error(`expected ${error}, got tokens`);
}

let passed = 0;
let failed = 0;
const done = new Set();
for (const [id, needs, name, run] of tests) {
  // A test continues from the one it needs; when that one failed, it cannot run.
  if (needs && !done.has(needs)) {
    failed += 1;
    log(`not ok - ${name}: not run (needs ${needs})`);
    continue;
  }
  try {
    await run();
    passed += 1;
    done.add(id);
    log(`ok - ${name}`);
  } catch (e) {
    failed += 1;
    log(
      `not ok - ${name}: ${e?.stack ?? e}${e?.cause ? `\n  cause: ${JSON.stringify(e.cause)}` : ""}`,
    );
  }
}
if (process.env.OIDC_RP_COUNTS) appendFileSync(process.env.OIDC_RP_COUNTS, `${passed} ${failed}\n`);
console.log(`openid-client: ${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 && passed > 0 ? 0 : 1;
