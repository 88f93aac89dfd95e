// Issue 11: the sign-in pages in a real headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core; no browser is ever downloaded), as a person uses them:
// keyboard focus order, labels, errors tied to their fields, the sign-up that continues
// the interrupted authorization, consent, single sign-on and logout. Every page is
// screenshotted on a phone-sized and a desktop-sized window (E2E_ARTIFACTS).
//
// Expects auth-server running (.ci/browser.sh starts it) and a client registered as
//   E2E_CLIENT_ID (not trusted, so consent is shown) with the loopback redirect URI
//   E2E_REDIRECT_URI (`http://127.0.0.1/…`, no port): the test listens on a port of its
//   own there, which RFC 8252 §7.3 lets the client choose at run time.
// Env: AUTH_URL, E2E_CLIENT_ID, E2E_REDIRECT_URI; optional CHROMIUM, E2E_ARTIFACTS,
// E2E_SUMMARY_FILE.
//
// Ends with `pages: N passed, M failed`; exits 1 when anything failed.

import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const AUTH_URL = required("AUTH_URL").replace(/\/+$/, "");
const CLIENT_ID = required("E2E_CLIENT_ID");
const REGISTERED_REDIRECT_URI = required("E2E_REDIRECT_URI");
let REDIRECT_URI; // the registered one with the port the client listens on
const landed = []; // every request that reached the client
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ARTIFACTS = process.env.E2E_ARTIFACTS || mkdtempSync(join(tmpdir(), "e2e-pages-"));

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return value;
}

function log(message) {
  console.log(`[pages] ${message}`);
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

const b64url = (buf) => buf.toString("base64url");

function authorizeUrl({ scope = "openid profile posts:read", state, prompt } = {}) {
  const verifier = b64url(randomBytes(48));
  const challenge = b64url(createHash("sha256").update(verifier).digest());
  const url = new URL(`${AUTH_URL}/oauth/authorize`);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: CLIENT_ID,
    redirect_uri: REDIRECT_URI,
    scope,
    state: state || b64url(randomBytes(8)),
    code_challenge: challenge,
    code_challenge_method: "S256",
    nonce: b64url(randomBytes(8)),
    ...(prompt ? { prompt } : {}),
  }).toString();
  return { url: url.toString(), verifier, state: url.searchParams.get("state") };
}

// The client: a loopback listener that records where the browser was sent back to.
async function startClient() {
  const server = createServer((req, res) => {
    if (new URL(req.url, REDIRECT_URI).pathname !== new URL(REDIRECT_URI).pathname) {
      res.writeHead(404).end();
      return;
    }
    landed.push(new URL(req.url, REDIRECT_URI).toString());
    res.writeHead(200, { "content-type": "text/html" }).end("<p>back at the client</p>");
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = new URL(REGISTERED_REDIRECT_URI);
  url.port = String(server.address().port);
  REDIRECT_URI = url.toString();
  return server;
}

async function shot(page, name) {
  for (const [width, height, tag] of [
    [375, 740, "phone"],
    [1280, 900, "desktop"],
  ]) {
    await page.setViewportSize({ width, height });
    await page.screenshot({ path: join(ARTIFACTS, `${name}-${tag}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

// Each field has a visible label tied to it; nothing on the page comes from elsewhere.
async function checkAccessible(page, what) {
  const unlabeled = await page.$$eval("input:not([type=hidden])", (inputs) =>
    inputs.filter((i) => !i.id || !document.querySelector(`label[for="${i.id}"]`)).map((i) => i.name),
  );
  assert(unlabeled.length === 0, `${what}: inputs without a label: ${unlabeled}`);
  const foreign = await page.$$eval("link[href], script[src], img[src]", (els) =>
    els.map((e) => e.href || e.src).filter((u) => !u.startsWith(location.origin)),
  );
  assert(foreign.length === 0, `${what}: loads from another origin: ${foreign}`);
  assert((await page.$$("script")).length === 0, `${what}: has a script`);
}

// The keyboard walks the page in reading order, starting where the page puts the focus.
async function focusOrder(page, expected) {
  const order = [await page.evaluate(() => document.activeElement.id)];
  for (let i = 1; i < expected.length; i += 1) {
    await page.keyboard.press("Tab");
    order.push(await page.evaluate(() => {
      const el = document.activeElement;
      return el.id || el.getAttribute("name") || el.textContent.trim();
    }));
  }
  assert(JSON.stringify(order) === JSON.stringify(expected), `focus order ${order}, expected ${expected}`);
}

async function signUpAndConsent(context) {
  const page = await context.newPage();
  const { url, state } = authorizeUrl();
  await page.goto(url);
  assert(new URL(page.url()).pathname === "/login", `expected /login, got ${page.url()}`);
  await checkAccessible(page, "login");
  await shot(page, "login");
  await focusOrder(page, ["username", "password", "Sign in", "Create an account"]);

  // A wrong password: one message, tied to the fields.
  const email = `pages-${Date.now()}@example.com`;
  await page.fill("#username", email);
  await page.fill("#password", "not the password");
  await page.press("#password", "Enter");
  await page.locator("#form-error").waitFor();
  assert(
    (await page.getAttribute("#username", "aria-describedby")) === "form-error",
    "the error is tied to the field",
  );
  await shot(page, "login-error");

  await page.click("text=Create an account");
  assert(new URL(page.url()).pathname === "/signup", `expected /signup, got ${page.url()}`);
  await checkAccessible(page, "signup");
  // A short password, bypassing the browser's own check: the server's message.
  await page.fill("#full_name", "Page Tester");
  await page.fill("#email", email);
  await page.fill("#password", "short");
  await page.$eval("form", (f) => f.setAttribute("novalidate", ""));
  await page.click("button[type=submit]");
  await page.locator("#password-error").waitFor();
  assert(
    (await page.getAttribute("#password", "aria-invalid")) === "true",
    "the password field is marked invalid",
  );
  await shot(page, "signup-error");
  await page.fill("#password", "correct horse battery staple");
  await page.click("button[type=submit]");

  await page.waitForURL(/\/consent\?/);
  await checkAccessible(page, "consent");
  const text = await page.locator("main").innerText();
  assert(text.includes("Read posts") && text.includes("See your name"), `consent: ${text}`);
  await shot(page, "consent");
  await page.click("button[value=allow]");
  await page.waitForURL(`${REDIRECT_URI}**`);
  const back = new URL(landed.at(-1));
  assert(back.searchParams.get("code"), `no code: ${back}`);
  assert(back.searchParams.get("state") === state, "state comes back");
  assert(back.searchParams.get("iss") === AUTH_URL, "iss comes back");
  log(`signed up ${email}, consented, back at the client with a code`);

  // Single sign-on: the same browser goes straight back.
  const again = authorizeUrl();
  await page.goto(again.url);
  await page.waitForURL(`${REDIRECT_URI}**`);
  assert(new URL(landed.at(-1)).searchParams.get("code"), "single sign-on gives a code");
  await page.close();
  return email;
}

async function logout(context, email) {
  const page = await context.newPage();
  await page.goto(`${AUTH_URL}/oauth/logout`);
  await checkAccessible(page, "logout");
  assert((await page.locator("main").innerText()).includes(email), "names the user");
  await shot(page, "logout");
  await page.click("button[value=logout]");
  await page.locator("text=Signed out").first().waitFor();
  await shot(page, "signed-out");
  // Signed out: the next authorization asks for the password again.
  const before = landed.length;
  await page.goto(authorizeUrl().url);
  assert(new URL(page.url()).pathname === "/login", `after logout: ${page.url()}`);
  assert(landed.length === before, "no silent sign-in after logout");
  await page.close();
}

async function errorPage(context) {
  const page = await context.newPage();
  const response = await page.goto(`${AUTH_URL}/oauth/authorize?client_id=unknown&redirect_uri=https://evil.example/`);
  assert(response.status() === 400, `unknown client: ${response.status()}`);
  assert(new URL(page.url()).host === new URL(AUTH_URL).host, "no redirect");
  await shot(page, "error");
  await page.close();
}

async function main() {
  const profile = mkdtempSync(join(tmpdir(), "e2e-pages-profile-"));
  let passed = 0;
  let failed = 0;
  let context;
  let client;
  try {
    client = await startClient();
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
      viewport: { width: 1280, height: 900 },
    });
    context.setDefaultTimeout(15_000);
    let email;
    for (const [name, scenario] of [
      ["sign-up, consent and single sign-on", async () => { email = await signUpAndConsent(context); }],
      ["logout", () => logout(context, email)],
      ["error page", () => errorPage(context)],
    ]) {
      try {
        await scenario();
        passed += 1;
        log(`PASS ${name}`);
      } catch (error) {
        failed += 1;
        log(`FAIL ${name}: ${error.message}`);
        const pages = context.pages();
        if (pages.length) {
          const file = join(ARTIFACTS, `failure-${name.replace(/\W+/g, "-")}.png`);
          await pages.at(-1).screenshot({ path: file, fullPage: true }).catch(() => {});
          log(`screenshot: ${file}`);
        }
      }
    }
  } catch (error) {
    failed += 1;
    log(`FAIL setup: ${error.stack || error.message}`);
  } finally {
    if (context) await context.close().catch(() => {});
    if (client) client.close();
    rmSync(profile, { recursive: true, force: true });
  }
  log(`screenshots in ${ARTIFACTS}`);
  const summary = `pages: ${passed} passed, ${failed} failed`;
  if (process.env.E2E_SUMMARY_FILE) writeFileSync(process.env.E2E_SUMMARY_FILE, `${summary}\n`);
  else console.log(summary);
  process.exitCode = failed === 0 && passed > 0 ? 0 : 1;
}

await main();
