#!/usr/bin/env node
// Drives the real GraphiQL page in headless Chromium, offline, the way a person would:
// load GET /graphql, log in with the default mutation, paste the token into the Headers
// editor, run a query, optionally run a subscription (over graphql-transport-ws), and report
// as JSON on stdout. Uses the system Chromium (playwright-core never downloads a browser).
//
//   cd tests/browser && npm ci
//   node run_query.mjs --url http://127.0.0.1:8000/graphql \
//       [--email admin@example.com --password admin] [--no-login] [--sign-in [--wait-refresh]] \
//       [--query '{ me { email role } }'] \
//       [--subscription 'subscription { lowStock { available } }' --expect '"available"'] \
//       [--ready-file /tmp/subscribed] [--screenshot /tmp/graphiql.png] [--timeout 30000]
//
// With --sign-in, the "Sign in" plugin panel is used instead (no pasting): it is opened from
// the sidebar, email and password are typed, and the panel must then show who is signed in
// with which role. With --wait-refresh, after the subscription the page waits until the panel
// refreshed its token (the server's access token TTL must be short) and runs the query again.
// With --ready-file, the file is created once the subscription's `subscribe` message has gone
// out on the WebSocket, so a test can then fire the mutation that makes the event.
// Exit status: 0 when the page rendered, nothing broke the CSP, no request left 127.0.0.1 and
// every step produced a response (GraphQL errors inside a response are reported, not fatal);
// 1 otherwise. The JSON report is printed in both cases.
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";

import { chromium } from "playwright-core";

const { values: args } = parseArgs({
  options: {
    url: { type: "string", default: "http://127.0.0.1:8000/graphql" },
    email: { type: "string", default: "admin@example.com" },
    password: { type: "string", default: "admin" },
    "no-login": { type: "boolean", default: false },
    "sign-in": { type: "boolean", default: false },
    "wait-refresh": { type: "boolean", default: false },
    "refresh-wait-ms": { type: "string" },
    query: { type: "string", default: "{ me { email role } }" },
    subscription: { type: "string" },
    expect: { type: "string", default: '"data"' },
    "ready-file": { type: "string" },
    screenshot: { type: "string" },
    timeout: { type: "string", default: "30000" },
    chromium: { type: "string", default: process.env.STOCKROOM_CHROMIUM || "/usr/bin/chromium" },
  },
});
const timeout = Number(args.timeout);

// Shared with tests/browser_util.py: every host but 127.0.0.1 is unresolvable.
const FLAGS = JSON.parse(
  readFileSync(new URL("./chromium-flags.json", import.meta.url), "utf8"),
);

const report = {
  url: args.url,
  rendered: false,
  login: null,
  token: false,
  signIn: null,
  httpAuthorization: [],
  refreshRequests: 0,
  queryAfterRefresh: null,
  query: null,
  subscription: null,
  wsConnectionInit: null,
  console: [],
  pageErrors: [],
  cspViolations: [],
  externalRequests: [],
  failedRequests: [],
  ok: false,
};

const QUERY_EDITOR = "section.graphiql-query-editor .CodeMirror";
// The tools section holds the Variables and Headers editors; the inactive one is `.hidden`.
const HEADERS_TAB = ".graphiql-editor-tools button";
const HEADERS_EDITOR = "section.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror";
const RESULT = 'section.result-window[aria-label="Result Window"] .CodeMirror';
const EXECUTE = 'button.graphiql-execute-button, button[aria-label^="Execute query"]';

function setEditor(page, selector, value) {
  return page.evaluate(
    ([sel, text]) => {
      const el = document.querySelector(sel);
      if (!el || !el.CodeMirror) throw new Error(`no CodeMirror at ${sel}`);
      el.CodeMirror.setValue(text);
    },
    [selector, value],
  );
}

function getEditor(page, selector) {
  return page.evaluate((sel) => {
    const el = document.querySelector(sel);
    return el && el.CodeMirror ? el.CodeMirror.getValue() : null;
  }, selector);
}

// Puts `operation` in the query editor, runs it with the execute button, and waits until the
// result editor holds JSON containing `expect` (and differing from what it held before).
async function run(page, operation, expect = '"data"') {
  const before = await getEditor(page, RESULT);
  await setEditor(page, QUERY_EDITOR, operation);
  // GraphiQL debounces editor changes into its state: clicking at once would run the previous
  // document (or, for the default one with two operations, open the operation picker).
  await page.waitForTimeout(600);
  await page.locator(EXECUTE).first().click();
  await page.waitForFunction(
    ([sel, previous, needle]) => {
      const el = document.querySelector(sel);
      const text = el && el.CodeMirror ? el.CodeMirror.getValue() : "";
      return text && text !== previous && text.includes(needle);
    },
    [RESULT, before, expect],
    { timeout },
  );
  const text = await getEditor(page, RESULT);
  try {
    return JSON.parse(text);
  } catch {
    return { raw: text };
  }
}

let browser;
try {
  browser = await chromium.launch({ executablePath: args.chromium, headless: true, args: FLAGS });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const allowedHost = new URL(args.url).host;

  page.on("console", (msg) => {
    const text = msg.text();
    report.console.push(`${msg.type()}: ${text}`);
    if (text.includes("Content Security Policy")) report.cspViolations.push(text);
  });
  page.on("pageerror", (err) => report.pageErrors.push(String(err)));
  page.on("request", (request) => {
    const url = new URL(request.url());
    if (url.pathname === "/graphql" && request.method() === "POST") {
      const body = request.postData() || "";
      if (body.includes("StockroomRefresh")) report.refreshRequests += 1;
      const auth = request.headers()["authorization"];
      if (!body.includes("StockroomSignIn") && !body.includes("StockroomRefresh") && !body.includes("IntrospectionQuery")) {
        report.httpAuthorization.push(typeof auth === "string" && auth.startsWith("Bearer "));
      }
    }
    if (["http:", "https:", "ws:", "wss:"].includes(url.protocol) && url.host !== allowedHost) {
      report.externalRequests.push(request.url());
    }
  });
  page.on("requestfailed", (request) =>
    report.failedRequests.push(`${request.url()} ${request.failure()?.errorText ?? ""}`),
  );
  let subscribeSent = false;
  page.on("websocket", (ws) => {
    ws.on("framesent", ({ payload }) => {
      let message;
      try {
        message = JSON.parse(String(payload));
      } catch {
        return;
      }
      if (message.type === "connection_init") {
        const params = message.payload || {};
        report.wsConnectionInit = {
          keys: Object.keys(params),
          authorization: typeof params.Authorization === "string"
            ? params.Authorization.replace(/^(Bearer\s+\S{0,8})\S*/, "$1…")
            : null,
        };
      }
      if (message.type === "subscribe") {
        subscribeSent = true;
        if (args["ready-file"]) writeFileSync(args["ready-file"], "subscribed\n");
      }
    });
  });

  const response = await page.goto(args.url, { waitUntil: "load", timeout });
  report.status = response ? response.status() : null;
  report.csp = response ? response.headers()["content-security-policy"] ?? null : null;
  await page.waitForSelector(`.graphiql-container ${QUERY_EDITOR}`, { timeout });
  report.rendered = true;
  report.defaultQueryHasLogin = ((await getEditor(page, QUERY_EDITOR)) || "").includes("login(");
  // The schema is introspected in the background: wait for the docs button to become usable.
  await page.waitForTimeout(500);

  if (args["sign-in"]) {
    await page.locator('button[aria-label="Show Sign in"]').click();
    const form = page.locator("form.stockroom-signin-form");
    await form.locator('input[name="email"]').fill(args.email);
    await form.locator('input[name="password"]').fill(args.password);
    await form.locator('button[type="submit"]').click();
    await page.waitForSelector(".stockroom-signin-email", { timeout });
    report.signIn = {
      email: await page.locator(".stockroom-signin-email").textContent(),
      role: await page.locator(".stockroom-signin-role").textContent(),
    };
    report.token = true;
  } else if (!args["no-login"]) {
    const login = await run(
      page,
      `mutation { login(email: ${JSON.stringify(args.email)}, password: ${JSON.stringify(args.password)}) { accessToken errors { code message } } }`,
    );
    report.login = login;
    const token = login?.data?.login?.accessToken;
    if (token) {
      report.token = true;
      await page.locator(HEADERS_TAB, { hasText: /^Headers$/ }).first().click();
      await setEditor(page, HEADERS_EDITOR, JSON.stringify({ Authorization: `Bearer ${token}` }, null, 2));
    }
  }

  if (args.query) report.query = await run(page, args.query);

  if (args.subscription) {
    report.subscription = await run(page, args.subscription, args.expect);
    report.subscribeSent = subscribeSent;
  }

  if (args["wait-refresh"]) {
    await page.waitForFunction(() => /Refreshed [1-9]\d* times?/.test(
      document.querySelector(".stockroom-signin-expiry")?.textContent || ""), null, { timeout });
    report.panelAfterRefresh = await page.locator(".stockroom-signin-expiry").textContent();
    // the first token has expired by now (the panel refreshes at 3/4 of its life): the query
    // only succeeds with the refreshed one
    await page.waitForTimeout(args["refresh-wait-ms"] ? Number(args["refresh-wait-ms"]) : 0);
    // while a subscription runs, the execute button stops it: stop it before the next query
    if (args.subscription) {
      await page.locator(EXECUTE).first().click();
      await page.waitForTimeout(500);
    }
    report.queryAfterRefresh = await run(page, args.query.replace("{", "{ __typename "));
  }

  if (args.screenshot) await page.screenshot({ path: args.screenshot });
  report.ok =
    report.rendered &&
    report.cspViolations.length === 0 &&
    report.pageErrors.length === 0 &&
    report.externalRequests.length === 0;
} catch (err) {
  report.error = String(err && err.stack ? err.stack : err);
} finally {
  if (browser) await browser.close();
}

process.stdout.write(JSON.stringify(report, null, 2) + "\n");
process.exit(report.ok ? 0 : 1);
