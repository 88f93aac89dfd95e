// Issue 6 point 5: Swagger UI's Authorize button, used the way a person uses it, in a real
// headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core; no browser is
// ever downloaded).
//
// Expects both servers running (.ci/browser.sh starts them):
//   AUTH_URL   auth-server base URL, e.g. http://127.0.0.1:8000
//   POSTS_URL  posts-server base URL, whose Swagger UI's password flow posts to
//              $AUTH_URL/oauth/token (POSTS_TOKEN_URL) and is allowed by auth-server's
//              CORS (AUTH_CORS_ORIGINS)
// Optional: CHROMIUM (default /usr/bin/chromium), E2E_ARTIFACTS (where screenshots of
// failures go; default a new temp dir), E2E_SUMMARY_FILE (write the summary line there
// instead of printing it).
//
// 1. posts-server /docs: Authorize -> the authorization-code flow (with PKCE, as the
//    public client posts-web, prefilled) -> Authorize -> the auth server's sign-in page in
//    Swagger's popup -> e-mail + password -> the popup lands on Swagger's receiver page and
//    closes; then GET /posts/me -> Try it out -> Execute -> 200 with the user's post.
// 2. posts-server /docs: the same with the legacy OAuth2 password flow form.
// 3. auth-server /docs: Authorize -> its own OAuth2 password flow form (e-mail and
//    password again) or, if its document offers an HTTP bearer scheme instead, paste an
//    access token got with the API -> Authorize; then GET /users/me -> Try it out ->
//    Execute -> 200 with that user's e-mail.
//
// Ends with `browser: N passed, M failed`; exits 1 when anything failed.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const AUTH_URL = requireEnv("AUTH_URL");
const POSTS_URL = requireEnv("POSTS_URL");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ACTION_TIMEOUT = 15_000;

function requireEnv(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return value.replace(/\/+$/, "");
}

function log(message) {
  console.log(`[browser] ${message}`);
}

// --- the API, as any client uses it ---------------------------------------------------

async function call(method, url, { json, form, token } = {}) {
  const headers = {};
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    headers["Content-Type"] = "application/x-www-form-urlencoded";
    body = new URLSearchParams(form).toString();
  }
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(url, { method, headers, body });
  const text = await response.text();
  return { status: response.status, text, json: text ? safeJson(text) : undefined };
}

function safeJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function expectStatus(what, response, status) {
  if (response.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${response.status}: ${response.text}`);
  }
}

async function signUpWithPost() {
  const suffix = `${Date.now()}-${process.pid}`;
  const user = {
    email: `swagger-${suffix}@example.com`,
    password: `pw-${suffix}-Swagger!`,
    full_name: "Swagger Tester",
  };
  expectStatus("sign-up", await call("POST", `${AUTH_URL}/users`, { json: user }), 201);
  const tokens = await call("POST", `${AUTH_URL}/oauth/token`, {
    form: { grant_type: "password", username: user.email, password: user.password },
  });
  expectStatus("password grant", tokens, 200);
  const post = {
    title: `Seen through Swagger ${suffix}`,
    body: "Created through the API before the browser test.",
  };
  const created = await call("POST", `${POSTS_URL}/posts`, {
    json: post,
    token: tokens.json.access_token,
  });
  expectStatus("create post", created, 201);
  log(`signed up ${user.email}, created post ${created.json.id}`);
  return { user, post, accessToken: tokens.json.access_token };
}

// --- Swagger UI, as a person uses it ------------------------------------------------------

function watch(page, name, transcript) {
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") {
      transcript.push(`${name} console.${m.type()}: ${m.text()}`);
    }
  });
  page.on("pageerror", (e) => transcript.push(`${name} page error: ${e.message}`));
  page.on("requestfailed", (r) =>
    transcript.push(`${name} request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`),
  );
  page.on("response", (r) => {
    const url = r.url();
    if (!url.includes("/docs")) {
      transcript.push(`${name} ${r.request().method()} ${url} -> ${r.status()}`);
    }
  });
}

async function openDocs(page, baseUrl) {
  await page.goto(`${baseUrl}/docs`, { waitUntil: "load" });
  await page.locator(".swagger-ui .information-container").waitFor();
  await page.locator(".swagger-ui .opblock").first().waitFor();
}

async function openAuthorizeDialog(page) {
  await page.locator(".swagger-ui .auth-wrapper button.authorize").click();
  const dialog = page.locator(".swagger-ui .modal-ux");
  await dialog.waitFor();
  return dialog;
}

async function closeDialog(dialog) {
  await dialog.locator("button.btn-done").first().click(); // "Close"
  await dialog.waitFor({ state: "detached" });
}

// Expands an operation, presses "Try it out" and "Execute", and returns the live
// response's status and body text as the page shows them.
async function tryItOut(page, method, path) {
  const operation = page.locator(`.swagger-ui .opblock.opblock-${method.toLowerCase()}`, {
    has: page.locator(`.opblock-summary-path[data-path="${path}"]`),
  });
  await operation.locator(".opblock-summary").first().click();
  await operation.getByRole("button", { name: "Try it out" }).click();
  await operation.getByRole("button", { name: "Execute" }).click();
  const live = operation.locator(".live-responses-table");
  await live.waitFor();
  const status = (await live.locator("tbody .response-col_status").first().innerText()).trim();
  const body = await live.locator("tbody .response-col_description pre").first().innerText();
  return { status, body };
}

// --- the two scenarios -------------------------------------------------------------------

// One OAuth2 flow's block of the Authorize dialog (the dialog lists one per flow, headed
// "oauth2 (OAuth2, <flow>)"; its inputs are gone once it is authorized).
function flowBlock(dialog, flow) {
  const heading = dialog.page().locator("h4", { hasText: `OAuth2, ${flow}` });
  return dialog.locator(".auth-container", { has: heading });
}

// Swagger shows "Logout" ("Remove authorization") once the token endpoint answered with a
// token, and an error block when it did not.
async function awaitAuthorized(flow, name) {
  const outcome = await Promise.race([
    flow
      .getByRole("button", { name: "Remove authorization" })
      .waitFor()
      .then(() => "authorized"),
    flow
      .locator(".errors")
      .waitFor()
      .then(() => "error"),
  ]);
  if (outcome !== "authorized") {
    const errors = await flow.locator(".errors").innerText();
    throw new Error(`Swagger's ${name} did not authorize: ${errors.trim()}`);
  }
}

// The OAuth2 password flow form: e-mail as username, the password, every scope, then
// the flow's "Authorize" button. Returns once Swagger holds a token.
async function authorizeWithPassword(dialog, user) {
  const flow = flowBlock(dialog, "password");
  await flow.locator("#oauth_username").fill(user.email);
  await flow.locator("#oauth_password").fill(user.password);
  const selectAll = flow.getByText("select all", { exact: true });
  if (await selectAll.count()) {
    await selectAll.first().click();
  } else {
    for (const box of await flow.locator('input[type="checkbox"]').all()) await box.check();
  }
  // The flow's "Authorize" button (accessible name "Apply given OAuth2 credentials").
  await flow.getByRole("button", { name: "Apply given OAuth2 credentials" }).click();
  await awaitAuthorized(flow, "password flow");
}

// The authorization-code flow: Swagger opens the auth server's sign-in page in a popup;
// a person signs in there; the popup lands on Swagger's receiver page, hands the code to
// this window and closes, and Swagger exchanges the code (with the PKCE verifier) itself.
async function authorizeWithCode(page, dialog, user, transcript) {
  const flow = flowBlock(dialog, "authorizationCode");
  const clientId = await flow.locator("#client_id_authorizationCode").inputValue();
  if (clientId !== "posts-web") throw new Error(`client_id is "${clientId}", not posts-web`);
  const [popup] = await Promise.all([
    page.waitForEvent("popup"),
    flow.getByRole("button", { name: "Apply given OAuth2 credentials" }).click(),
  ]);
  watch(popup, "sign-in popup", transcript);
  await popup.waitForLoadState();
  const signIn = new URL(popup.url());
  if (signIn.pathname !== "/login") {
    throw new Error(`the popup opened ${popup.url()}, not the sign-in page`);
  }
  await popup.locator("#username").fill(user.email);
  await popup.locator("#password").fill(user.password);
  await Promise.all([
    popup.waitForEvent("close", { timeout: ACTION_TIMEOUT }),
    popup.getByRole("button", { name: "Sign in" }).click(),
  ]);
  await awaitAuthorized(flow, "authorization-code flow");
}

// The HTTP bearer form: paste the token, then "Authorize".
async function authorizeWithBearer(dialog, accessToken) {
  await dialog.locator('input[aria-label="auth-bearer-value"], input[type="text"]').first()
    .fill(accessToken);
  // The dialog's "Authorize" button (accessible name "Apply credentials").
  await dialog.getByRole("button", { name: "Apply credentials" }).click();
  await dialog.getByRole("button", { name: "Remove authorization" }).waitFor(); // "Logout"
}

// Authorizes with whatever the server's document offers: the OAuth2 password flow
// (log in with e-mail and password) or an HTTP bearer scheme (paste a token obtained
// with the API, as a person would copy it from curl's output).
async function authorize(page, data) {
  const dialog = await openAuthorizeDialog(page);
  let how;
  if (await dialog.locator("#oauth_username").count()) {
    await authorizeWithPassword(dialog, data.user);
    how = "OAuth2 password flow";
  } else {
    await authorizeWithBearer(dialog, data.accessToken);
    how = "bearer token";
  }
  await closeDialog(dialog);
  return how;
}

async function postsServerCodeFlow(context, data, transcript) {
  const page = await context.newPage();
  watch(page, "posts-docs", transcript);
  await openDocs(page, POSTS_URL);
  const dialog = await openAuthorizeDialog(page);
  await authorizeWithCode(page, dialog, data.user, transcript);
  await closeDialog(dialog);

  const { status, body } = await tryItOut(page, "GET", "/posts/me");
  if (status !== "200") throw new Error(`GET /posts/me answered ${status}: ${body}`);
  if (!body.includes(data.post.title)) {
    throw new Error(`GET /posts/me answered 200 without the user's post: ${body}`);
  }
  log(`posts-server (authorization code + PKCE, sign-in page): GET /posts/me -> 200`);
  return page;
}

async function postsServerDocs(context, data, transcript) {
  const page = await context.newPage();
  watch(page, "posts-docs", transcript);
  await openDocs(page, POSTS_URL);
  const how = await authorize(page, data);

  const { status, body } = await tryItOut(page, "GET", "/posts/me");
  if (status !== "200") throw new Error(`GET /posts/me answered ${status}: ${body}`);
  if (!body.includes(data.post.title)) {
    throw new Error(`GET /posts/me answered 200 without the user's post: ${body}`);
  }
  log(`posts-server (${how}): GET /posts/me -> 200 with "${data.post.title}"`);
  return page;
}

async function authServerDocs(context, data, transcript) {
  const page = await context.newPage();
  watch(page, "auth-docs", transcript);
  await openDocs(page, AUTH_URL);
  const how = await authorize(page, data);

  const { status, body } = await tryItOut(page, "GET", "/users/me");
  if (status !== "200") throw new Error(`GET /users/me answered ${status}: ${body}`);
  if (!body.includes(data.user.email)) {
    throw new Error(`GET /users/me answered 200 without the user's e-mail: ${body}`);
  }
  log(`auth-server (${how}): GET /users/me -> 200 with ${data.user.email}`);
  return page;
}

// --- runner ------------------------------------------------------------------------------

async function main() {
  const artifacts = process.env.E2E_ARTIFACTS || mkdtempSync(join(tmpdir(), "e2e-browser-"));
  const profile = mkdtempSync(join(tmpdir(), "e2e-chromium-profile-"));
  let passed = 0;
  let failed = 0;
  let context;
  try {
    const data = await signUpWithPost();
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      chromiumSandbox: false,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      viewport: { width: 1280, height: 1000 },
    });
    context.setDefaultTimeout(ACTION_TIMEOUT);

    for (const [name, scenario] of [
      ["posts-server Swagger: authorization code + PKCE, GET /posts/me", postsServerCodeFlow],
      ["posts-server Swagger: Authorize, GET /posts/me", postsServerDocs],
      ["auth-server Swagger: Authorize, GET /users/me", authServerDocs],
    ]) {
      const transcript = [];
      let page;
      try {
        page = await scenario(context, data, transcript);
        await page.close();
        passed += 1;
        log(`PASS ${name}`);
      } catch (error) {
        failed += 1;
        log(`FAIL ${name}: ${error.message}`);
        const pages = context.pages();
        const current = page || pages[pages.length - 1];
        if (current) {
          const shot = join(artifacts, `${name.split(":")[0].replace(/\W+/g, "-")}.png`);
          await current.screenshot({ path: shot, fullPage: true }).catch(() => {});
          log(`screenshot: ${shot}`);
        }
        for (const line of transcript) log(`  ${line}`);
        for (const p of context.pages()) await p.close().catch(() => {});
      }
    }
  } catch (error) {
    failed += 1;
    log(`FAIL setup: ${error.stack || error.message}`);
  } finally {
    if (context) await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
  const summary = `browser: ${passed} passed, ${failed} failed`;
  // .ci/browser.sh prints the summary itself, last, after stopping the servers.
  if (process.env.E2E_SUMMARY_FILE) writeFileSync(process.env.E2E_SUMMARY_FILE, `${summary}\n`);
  else console.log(summary);
  process.exitCode = failed === 0 && passed > 0 ? 0 : 1;
}

await main();
