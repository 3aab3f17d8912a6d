#!/usr/bin/env node
// End-to-end test of the web UI in headless Chromium (Debian's `chromium`, driven by
// playwright-core) against the real `auth-http` binary on loopback, with a fresh PostgreSQL
// database, its own Redis key prefix and an SMTP sink in this process that receives the mails
// (codes are read from the delivered mail). Screenshots of every page at desktop and phone widths
// go to SCREENSHOT_DIR (default tests/browser/artifacts/screenshots).
//
//   cd tests/browser && npm ci && npm test
//
// Environment: AUTH_HTTP_BIN (skip `cargo build -p auth-http`), CHROMIUM_PATH (/usr/bin/chromium),
// DATABASE_ADMIN_URL (postgres://postgres@127.0.0.1:5432/test), TEST_REDIS_URL
// (redis://127.0.0.1:6379), SCREENSHOT_DIR.

import { spawn, spawnSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const SHOTS = path.resolve(process.env.SCREENSHOT_DIR || path.join(here, 'artifacts', 'screenshots'));
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ADMIN_URL = process.env.DATABASE_ADMIN_URL || 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379';
const PASSWORD = 'correct horse battery staple';
const NEW_PASSWORD = 'a brand new passphrase';
const THIRD_PASSWORD = 'yet another fine passphrase';
const TIME_LIMIT_MS = 150_000;
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

let passed = 0;
let failed = 0;
const cleanups = [];
const t0 = Date.now();
const elapsed = () => ((Date.now() - t0) / 1000).toFixed(1) + 's';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function fail(message) {
  throw new Error(message);
}
function check(cond, message) {
  if (!cond) fail(message);
}

async function step(name, fn) {
  const start = Date.now();
  try {
    await fn();
    passed += 1;
    console.log(`ok   ${name} (${Date.now() - start} ms)`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}\n     ${String(e && e.stack ? e.stack : e).split('\n').join('\n     ')}`);
    throw e;
  }
}

// ---- TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30 s), as an authenticator app computes it -------------

function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of text.replace(/=+$/, '').toUpperCase()) {
    const v = alphabet.indexOf(c);
    if (v < 0) fail(`not base32: ${c}`);
    bits += v.toString(2).padStart(5, '0');
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** The code of time step `step` for the base32 `secret`. */
function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', base32Decode(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, '0');
}
const currentStep = () => Math.floor(Date.now() / 1000 / 30);

// ---- prerequisites ------------------------------------------------------------------------------

function requireChromium() {
  if (!existsSync(CHROMIUM)) {
    console.error(
      `browser test: Chromium not found at ${CHROMIUM}.\n` +
        '  Install it with `apt-get install -y chromium` (Debian), or set CHROMIUM_PATH.\n' +
        '  (.ci/run installs it when missing.) This test never skips.',
    );
    process.exit(1);
  }
}

async function loadModules() {
  try {
    const [{ chromium }, { SMTPServer }] = await Promise.all([import('playwright-core'), import('smtp-server')]);
    return { chromium, SMTPServer };
  } catch (e) {
    console.error(`browser test: npm packages missing (${e.message}).\n  Run \`npm ci\` in tests/browser.`);
    process.exit(1);
  }
}

function serverBinary() {
  if (process.env.AUTH_HTTP_BIN) return process.env.AUTH_HTTP_BIN;
  const cargo = process.env.CARGO || 'cargo';
  console.log('browser test: cargo build -p auth-http');
  const build = spawnSync(cargo, ['build', '-p', 'auth-http', '--bin', 'auth-http'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  check(build.status === 0, `cargo build -p auth-http failed (exit ${build.status})`);
  const meta = spawnSync(cargo, ['metadata', '--format-version', '1', '--no-deps'], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  check(meta.status === 0, `cargo metadata failed: ${meta.stderr}`);
  const bin = path.join(JSON.parse(meta.stdout).target_directory, 'debug', 'auth-http');
  check(existsSync(bin), `no binary at ${bin}`);
  return bin;
}

function psql(sql) {
  const r = spawnSync('psql', [ADMIN_URL, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql], { encoding: 'utf8' });
  if (r.error) fail(`psql could not run (${r.error.message}); install PostgreSQL's client`);
  check(r.status === 0, `psql failed on ${sql}: ${r.stderr}`);
}

function redisCleanup(prefix) {
  const scan = spawnSync('redis-cli', ['-u', REDIS_URL, '--scan', '--pattern', `${prefix}*`], { encoding: 'utf8' });
  const keys = scan.status === 0 ? scan.stdout.split('\n').filter(Boolean) : [];
  for (let i = 0; i < keys.length; i += 100) {
    spawnSync('redis-cli', ['-u', REDIS_URL, 'DEL', ...keys.slice(i, i + 100)], { encoding: 'utf8' });
  }
}

// ---- mail sink ----------------------------------------------------------------------------------

async function startMailSink(SMTPServer) {
  const mails = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks = [];
      stream.on('data', (c) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const subject = (raw.match(/^Subject: (.*)$/im) || [])[1] || '';
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address.toLowerCase()), subject: subject.trim(), raw });
        callback();
      });
    },
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    port: server.server.address().port,
    mails,
    close: () => new Promise((r) => server.close(r)),
    count: (to) => mails.filter((m) => m.to.includes(to)).length,
    /** Waits for mail number `index` (0-based) to `to`, and returns the code of its subject. */
    async code(to, kind, index) {
      const re = new RegExp(`^(\\d{6}) is your SecureAuth ${kind} code`);
      for (let i = 0; i < 200; i++) {
        const list = mails.filter((m) => m.to.includes(to) && re.test(m.subject));
        if (list.length > index) return list[index].subject.match(re)[1];
        await sleep(50);
      }
      fail(`no ${kind} mail #${index + 1} to ${to}; got: ${mails.map((m) => m.subject).join(' | ')}`);
    },
  };
}

// ---- server -------------------------------------------------------------------------------------

/** A loopback port nobody listens on (the server needs it before it starts: passkeys are bound
 * to the origin `http://localhost:<port>`). */
async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startServer(bin, env, logFile) {
  const cwd = mkdtempSync(path.join(tmpdir(), 'secureauth-ui-')); // no stray .env is read
  cleanups.push(() => rmSync(cwd, { recursive: true, force: true }));
  const child = spawn(bin, ['serve'], {
    cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME || cwd, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (c) => { log += c; });
  child.stderr.on('data', (c) => { log += c; });
  cleanups.push(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await Promise.race([new Promise((r) => child.once('exit', r)), sleep(5000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    writeFileSync(logFile, log);
  });
  for (let i = 0; i < 300; i++) {
    const m = log.match(/"url":"(http:\/\/[^"]+)"/);
    if (m) return { url: m[1].replace(/\/$/, ''), log: () => log };
    if (child.exitCode !== null) break;
    await sleep(100);
  }
  fail(`the server did not print its web UI address; its output:\n${log}`);
}

// ---- browser helpers ----------------------------------------------------------------------------

function watch(page, problems) {
  page.on('pageerror', (e) => problems.push(`page error on ${page.url()}: ${e.message}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    // Expected: the API's 4xx answers (401 from /me when logged out, 400 for a wrong code...).
    if (/Failed to load resource: the server responded with a status of 4\d\d/.test(text)) return;
    problems.push(`console error on ${page.url()}: ${text}`);
  });
}

async function shot(page, name, width) {
  const file = path.join(SHOTS, `${name}-${width === DESKTOP.width ? 'desktop' : 'phone'}-${width}.png`);
  await page.screenshot({ path: file, fullPage: true });
}

async function paste(page, selector, text) {
  await page.locator(selector).evaluate((el, t) => {
    const data = new DataTransfer();
    data.setData('text/plain', t);
    el.focus();
    el.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
  }, text);
}

const text = (page, selector) => page.locator(selector).innerText();
const onPage = (page, name) => page.waitForURL((u) => new URL(u).pathname === `/ui/${name}`, { timeout: 10_000 });

async function login(page, base, email, password) {
  await page.goto(`${base}/ui/login`);
  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.click('button[type="submit"]');
  await onPage(page, 'account');
  await page.locator('#account-email').filter({ hasText: email }).waitFor();
}

// ---- the test -----------------------------------------------------------------------------------

async function main() {
  requireChromium();
  const { chromium, SMTPServer } = await loadModules();
  const bin = serverBinary();
  const timer = setTimeout(() => {
    console.log(`FAIL the browser test took longer than ${TIME_LIMIT_MS / 1000} s`);
    failed += 1;
    finish(1);
  }, TIME_LIMIT_MS);
  timer.unref();

  rmSync(SHOTS, { recursive: true, force: true });
  mkdirSync(SHOTS, { recursive: true });
  const id = randomBytes(6).toString('hex');

  // PostgreSQL: a fresh database (same prefix as the Rust tests' TestDatabase), dropped after.
  const db = `secureauth_test_ui_${id}`;
  psql(`CREATE DATABASE "${db}"`);
  cleanups.push(() => psql(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`));
  const dbUrl = new URL(ADMIN_URL);
  dbUrl.pathname = `/${db}`;
  // Redis: a key prefix of our own, deleted after.
  const prefix = `secureauth_ui_test_${id}`;
  cleanups.push(() => redisCleanup(prefix));

  const sink = await startMailSink(SMTPServer);
  cleanups.push(() => sink.close());

  const port = await freePort();
  const server = await startServer(
    bin,
    {
      APP_ENV: 'development',
      BIND_ADDR: `127.0.0.1:${port}`,
      // Passkeys: WebAuthn needs a domain, so their pages are opened as http://localhost.
      WEBAUTHN_RP_ID: 'localhost',
      WEBAUTHN_ORIGIN: `http://localhost:${port}`,
      DATABASE_URL: dbUrl.toString(),
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      SMTP_HOST: '127.0.0.1',
      SMTP_PORT: String(sink.port),
      SMTP_TLS: 'none',
      MAIL_FROM: 'SecureAuth <no-reply@secureauth.test>',
      MAIL_COOLDOWN: '1s',
      // One person does every sensitive change here, minutes apart: more password checks
      // than the production budget of five a quarter hour.
      RATE_LIMIT_REAUTH_PER_USER: '50/15m',
      RATE_LIMIT_REAUTH_PER_IP: '100/15m',
      LOG_FORMAT: 'json',
      RUST_LOG: 'info',
      // COOKIE_SECURE is left at its default (true): the README's command on 127.0.0.1.
      ...(process.env.COOKIE_SECURE ? { COOKIE_SECURE: process.env.COOKIE_SECURE } : {}),
    },
    path.join(SHOTS, '..', 'server.log'),
  );
  const base = server.url;
  console.log(`browser test: server at ${base}, screenshots in ${SHOTS}`);

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync',
      // A plain-http host name that is not localhost, for the COOKIE_SECURE hint below.
      '--host-resolver-rules=MAP secureauth.test 127.0.0.1',
    ],
  });
  cleanups.unshift(() => browser.close());
  const problems = [];
  const desktop = await browser.newContext({ viewport: DESKTOP });
  const page = await desktop.newPage();
  watch(page, problems);
  const email = `ada.${id}@example.com`;
  let signupMails = 0;

  await step('/ sends a logged-out person to the login page', async () => {
    await page.goto(base + '/');
    await onPage(page, 'login');
    await shot(page, 'login', DESKTOP.width);
  });

  await step('sign up with the keyboard only; a weak password is refused next to its field', async () => {
    await page.getByRole('link', { name: 'Create an account' }).click();
    await onPage(page, 'signup');
    await shot(page, 'signup', DESKTOP.width);
    for (let i = 0; i < 6 && (await page.evaluate(() => document.activeElement.id)) !== 'email'; i++) {
      await page.keyboard.press('Tab');
    }
    const focus = await page.evaluate(() => {
      const el = document.activeElement;
      const s = getComputedStyle(el);
      return { id: el.id, outline: s.outlineStyle, width: parseFloat(s.outlineWidth) };
    });
    check(focus.id === 'email', `Tab never reached the email field (${focus.id})`);
    check(focus.outline !== 'none' && focus.width >= 2, `focus is not visible: ${JSON.stringify(focus)}`);
    check((await page.getAttribute('#email', 'autocomplete')) === 'email', 'email autocomplete');
    check((await page.getAttribute('#password', 'autocomplete')) === 'new-password', 'signup password autocomplete');
    await page.keyboard.type(email);
    await page.keyboard.press('Tab');
    check((await page.evaluate(() => document.activeElement.id)) === 'password', 'Tab goes to the password');
    await page.keyboard.type('password');
    await page.keyboard.press('Enter');
    await page.locator('#password-error').filter({ hasText: /\w/ }).waitFor();
    check((await page.getAttribute('#password', 'aria-invalid')) === 'true', 'password marked invalid');
    check(page.url().endsWith('/ui/signup'), 'stays on signup after a 422');
    // The field keeps focus: replace the password, reveal it with the keyboard, hide it again.
    await page.keyboard.press('Control+A');
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Tab');
    check((await page.evaluate(() => document.activeElement.textContent)) === 'Show', 'Tab reaches the reveal button');
    await page.keyboard.press('Space');
    check((await page.getAttribute('#password', 'type')) === 'text', 'reveal shows the password');
    check((await page.getAttribute('button.reveal', 'aria-pressed')) === 'true', 'reveal is pressed');
    await page.keyboard.press('Space');
    check((await page.getAttribute('#password', 'type')) === 'password', 'reveal hides it again');
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Enter');
    await onPage(page, 'verify');
    signupMails += 1;
  });

  let code;
  await step('the code page: prefilled address, the code read from the delivered mail', async () => {
    check((await page.inputValue('#email')) === email, 'the address is filled in');
    check((await page.getAttribute('#otp', 'autocomplete')) === 'one-time-code', 'otp autocomplete');
    await page.locator('#notice').filter({ hasText: 'mailed' }).waitFor();
    code = await sink.code(email, 'verification', 0);
    await shot(page, 'verify', DESKTOP.width);
  });

  await step('the code field takes the 6 digits pasted with spaces around them, and nothing else', async () => {
    await paste(page, '#otp', 'abc123');
    check((await page.inputValue('#otp')) === '', 'junk paste is refused');
    check(/6 digits/.test(await text(page, '#otp-error')), 'junk paste explains why');
    await paste(page, '#otp', '12345');
    check((await page.inputValue('#otp')) === '', 'five digits are refused');
    await paste(page, '#otp', `  ${code} \n`);
    check((await page.inputValue('#otp')) === code, 'the code with spaces around it is accepted');
    check((await text(page, '#otp-error')) === '', 'no complaint after a good paste');
    await page.fill('#otp', '');
    await page.locator('#otp').pressSequentially('12a3');
    check((await page.inputValue('#otp')) === '123', 'letters cannot be typed');
  });

  await step('a wrong code shows the API error next to the code field', async () => {
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
    await page.fill('#otp', wrong);
    await page.click('button[type="submit"]');
    await page.locator('#otp-error').filter({ hasText: 'The code is invalid.' }).waitFor();
    check((await page.getAttribute('#otp', 'aria-invalid')) === 'true', 'code marked invalid');
    await shot(page, 'verify-wrong-code', DESKTOP.width);
  });

  await step('"send a new code" mails a new code, which verifies the address', async () => {
    await sleep(1100); // MAIL_COOLDOWN=1s
    await page.getByRole('button', { name: 'Send a new code' }).click();
    await page.locator('#notice').filter({ hasText: 'new code' }).waitFor();
    const second = await sink.code(email, 'verification', 1);
    await page.fill('#otp', '');
    await paste(page, '#otp', ` ${second} `);
    await page.keyboard.press('Enter');
    await onPage(page, 'login');
    await page.locator('#notice').filter({ hasText: 'verified' }).waitFor();
  });

  await step('log in (cookie transport): progress shown, no double submit, account page', async () => {
    let posts = 0;
    page.on('request', (r) => {
      if (r.method() === 'POST' && new URL(r.url()).pathname === '/login') posts += 1;
    });
    await page.route('**/login', async (route) => {
      await sleep(400);
      await route.continue();
    });
    check((await page.inputValue('#email')) === email, 'login address prefilled');
    check((await page.getAttribute('#password', 'autocomplete')) === 'current-password', 'login autocomplete');
    await page.fill('#password', PASSWORD);
    await page.click('button[type="submit"]');
    const state = await page.evaluate(() => {
      const b = document.querySelector('button[type="submit"]');
      const form = document.getElementById('form');
      form.requestSubmit();
      form.dispatchEvent(new Event('submit', { cancelable: true }));
      return { disabled: b.disabled, busy: b.getAttribute('aria-busy'), label: b.textContent };
    });
    await page.keyboard.press('Enter');
    check(state.disabled && state.busy === 'true' && state.label === 'Logging in…', `busy button: ${JSON.stringify(state)}`);
    await onPage(page, 'account');
    await page.unroute('**/login');
    check(posts === 1, `${posts} POST /login were sent`);
    await page.locator('#account-email').filter({ hasText: email }).waitFor();
    check((await text(page, '#account-verified')) === 'Verified', 'verified shown');
    check(/\(in \d+ hours\)/.test(await text(page, '#session-expires')), `expiry: ${await text(page, '#session-expires')}`);
    check(Boolean(await page.getAttribute('#session-expires', 'datetime')), 'expiry as <time datetime>');
    await page.locator('#session-count').filter({ hasText: '1' }).waitFor();
    await shot(page, 'account', DESKTOP.width);
  });

  await step('the session is only in an HttpOnly cookie: not in storage, script or page', async () => {
    const cookies = await desktop.cookies(base);
    const session = cookies.find((c) => c.name === '__Host-session' || c.name === 'session');
    check(session, `no session cookie: ${JSON.stringify(cookies.map((c) => c.name))}`);
    check(session.httpOnly, 'the cookie is HttpOnly');
    const seen = await page.evaluate(() => ({
      local: localStorage.length,
      session: JSON.stringify(Object.entries(sessionStorage)),
      cookie: document.cookie,
      html: document.documentElement.outerHTML,
    }));
    check(seen.local === 0, 'localStorage is empty');
    for (const [where, value] of Object.entries(seen)) {
      check(!String(value).includes(session.value), `the token is visible in ${where}`);
    }
  });

  await step('recent security activity: this login first, the signup and the verification further down', async () => {
    await page.locator('#activity-list li').first().waitFor();
    const first = await page.locator('#activity-list li .what').first().textContent();
    check(first === 'Logged in', `newest activity: ${first}`);
    const where = await page.locator('#activity-list li .where').first().textContent();
    check(/from 127\.0\.0\.0\/24/.test(where), `where: ${where}`);
    check(Boolean(await page.locator('#activity-list li time').first().getAttribute('datetime')), 'time as <time datetime>');
    for (let i = 0; i < 10 && await page.locator('#activity-more').isVisible(); i += 1) {
      const before = await page.locator('#activity-list li').count();
      await page.getByRole('button', { name: 'Show older activity' }).click();
      await page.waitForFunction((n) => document.querySelectorAll('#activity-list li').length > n, before);
    }
    const all = await page.locator('#activity-list li .what').allTextContents();
    check(all.includes('Email address verified') && all.at(-1) === 'Account created', `activity: ${JSON.stringify(all)}`);
    check(await page.locator('#activity-empty').isHidden(), '"no activity" hidden');
  });

  await step('a logged-in person opening the login page (or /) lands on the account page', async () => {
    await page.goto(`${base}/ui/login`);
    await onPage(page, 'account');
    await page.goto(`${base}/`);
    await onPage(page, 'account');
    await page.locator('#account-email').filter({ hasText: email }).waitFor();
  });

  await step('log out; the back button does not show the account page', async () => {
    await page.getByRole('button', { name: 'Log out', exact: true }).click();
    await onPage(page, 'login');
    await page.locator('#notice').filter({ hasText: 'logged out' }).waitFor();
    await page.goBack();
    await onPage(page, 'login');
    await sleep(300);
    check(new URL(page.url()).pathname === '/ui/login', `back ended on ${page.url()}`);
    check(!(await page.locator('#account-email').count()), 'no account data on the page');
    await page.goto(`${base}/ui/account`);
    await onPage(page, 'login');
  });

  await step('a wrong password is shown as a form-level error', async () => {
    await page.fill('#email', email);
    await page.fill('#password', 'not the password at all');
    await page.click('button[type="submit"]');
    await page.locator('#form-error').filter({ hasText: 'Invalid email or password, or the address is not verified yet.' }).waitFor();
    await shot(page, 'login-error', DESKTOP.width);
  });

  // Phone: every page, logged out, then the account page of a second session.
  const phone = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  const mobile = await phone.newPage();
  watch(mobile, problems);

  await step('every page fits a phone screen (390 px): screenshots', async () => {
    for (const name of ['signup', 'verify', 'login', 'login-code', 'forgot', 'reset']) {
      await mobile.goto(`${base}/ui/${name}`);
      await mobile.locator('h1').waitFor();
      const width = await mobile.evaluate(() => document.documentElement.scrollWidth);
      check(width <= PHONE.width, `${name} is ${width} px wide on a phone`);
      await shot(mobile, name, PHONE.width);
    }
    await login(mobile, base, email, PASSWORD);
    const width = await mobile.evaluate(() => document.documentElement.scrollWidth);
    check(width <= PHONE.width, `account is ${width} px wide on a phone`);
    await shot(mobile, 'account', PHONE.width);
  });

  await step('"log out everywhere" ends the other device\'s session too', async () => {
    await login(page, base, email, PASSWORD);
    await page.locator('#session-count').filter({ hasText: '2' }).waitFor();
    await page.getByRole('button', { name: 'Log out everywhere' }).click();
    await onPage(page, 'login');
    await page.locator('#notice').filter({ hasText: 'every device' }).waitFor();
    await mobile.reload();
    await onPage(mobile, 'login');
  });

  await step('forgot password → reset with the mailed code → log in with the new password', async () => {
    await page.getByRole('link', { name: 'Forgot your password?' }).click();
    await onPage(page, 'forgot');
    check((await page.inputValue('#email')) === email, 'address prefilled');
    await shot(page, 'forgot', DESKTOP.width);
    await page.click('button[type="submit"]');
    await onPage(page, 'reset');
    await page.locator('#notice').filter({ hasText: 'reset code' }).waitFor();
    const resetCode = await sink.code(email, 'password reset', 0);
    await shot(page, 'reset', DESKTOP.width);
    check((await page.getAttribute('#new_password', 'autocomplete')) === 'new-password', 'reset autocomplete');
    await paste(page, '#otp', ` ${resetCode} `);
    await page.fill('#new_password', NEW_PASSWORD);
    await page.click('button[type="submit"]');
    await onPage(page, 'login');
    await page.locator('#notice').filter({ hasText: 'password was changed' }).waitFor();
    await page.fill('#password', PASSWORD);
    await page.click('button[type="submit"]');
    await page.locator('#form-error').filter({ hasText: 'Invalid email or password, or the address is not verified yet.' }).waitFor();
    await page.fill('#password', NEW_PASSWORD);
    await page.click('button[type="submit"]');
    await onPage(page, 'account');
    await page.locator('#account-email').filter({ hasText: email }).waitFor();
  });

  await step('"email me a login code" on the login page → the code page → logged in without the password', async () => {
    await page.getByRole('button', { name: 'Log out', exact: true }).click();
    await onPage(page, 'login');
    await page.fill('#email', email);
    await page.getByRole('button', { name: 'Email me a login code' }).click();
    await onPage(page, 'login-code');
    await page.locator('#notice').filter({ hasText: 'login code is on its way' }).waitFor();
    check((await page.inputValue('#email')) === email, 'address prefilled');
    const loginCode = await sink.code(email, 'login', 0);
    await shot(page, 'login-code', DESKTOP.width);
    await paste(page, '#otp', ` ${loginCode} `);
    await page.click('button[type="submit"]');
    await onPage(page, 'account');
    await page.locator('#account-email').filter({ hasText: email }).waitFor();
  });

  let totpSecret = '';
  let totpStep = 0;
  let recoveryCodes = [];
  await step('turn on two-factor authentication: QR code and key, a code computed here, recovery codes shown once', async () => {
    await page.goto(`${base}/ui/account`);
    await onPage(page, 'account');
    await page.locator('#mfa-state').filter({ hasText: 'Off' }).waitFor();
    await page.fill('#mfa-enrol-password', NEW_PASSWORD);
    await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
    await page.locator('#mfa-qr svg').waitFor();
    totpSecret = (await page.textContent('#mfa-secret')).trim();
    check(/^[A-Z2-7]{32}$/.test(totpSecret), `a 160-bit base32 key: ${totpSecret}`);
    await shot(page, 'account-mfa-enrol', DESKTOP.width);
    totpStep = currentStep();
    await page.fill('#mfa-confirm-code', totp(totpSecret, totpStep));
    await page.getByRole('button', { name: 'Turn on' }).click();
    await page.locator('#mfa-codes-list li').nth(9).waitFor();
    recoveryCodes = await page.locator('#mfa-codes-list li').allTextContents();
    check(recoveryCodes.length === 10 && recoveryCodes.every((c) => /^[0-9a-z]{5}-[0-9a-z]{5}$/.test(c)), `ten codes: ${recoveryCodes}`);
    await page.locator('#mfa-state').filter({ hasText: '10 recovery codes left' }).waitFor();
    check((await page.textContent('#mfa-secret')) === '', 'the key is gone from the page');
    await shot(page, 'account-mfa-codes', DESKTOP.width);
    await page.reload();
    await onPage(page, 'account');
    await page.locator('#mfa-state').filter({ hasText: 'On' }).waitFor();
    check(!(await page.isVisible('#mfa-codes')), 'recovery codes are shown only once');
  });

  await step('the password alone opens no session: the second step takes a code computed here', async () => {
    await page.getByRole('button', { name: 'Log out', exact: true }).click();
    await onPage(page, 'login');
    await page.fill('#email', email);
    await page.fill('#password', NEW_PASSWORD);
    await page.click('button[type="submit"]');
    await onPage(page, 'login-mfa');
    const me = await page.evaluate(async () => (await fetch('/me')).status);
    check(me === 401, `no session after the password alone (GET /me answered ${me})`);
    await shot(page, 'login-mfa', DESKTOP.width);
    // The confirmation used its step: that code again is a replay.
    await page.fill('#code', totp(totpSecret, totpStep));
    await page.click('button[type="submit"]');
    await page.locator('#code-error').filter({ hasText: 'used before' }).waitFor();
    await page.fill('#code', totp(totpSecret, totpStep + 1));
    await page.click('button[type="submit"]');
    await onPage(page, 'account');
    await page.locator('#account-email').filter({ hasText: email }).waitFor();
  });

  await step('a recovery code logs in once; the used one is refused', async () => {
    for (const [i, code] of [[0, recoveryCodes[0]], [1, recoveryCodes[0]]]) {
      await page.getByRole('button', { name: 'Log out', exact: true }).click();
      await onPage(page, 'login');
      await page.fill('#email', email);
      await page.fill('#password', NEW_PASSWORD);
      await page.click('button[type="submit"]');
      await onPage(page, 'login-mfa');
      await page.fill('#code', code);
      await page.click('button[type="submit"]');
      if (i === 1) {
        await page.locator('#code-error').filter({ hasText: 'used before' }).waitFor();
        await page.fill('#code', recoveryCodes[1]);
        await page.click('button[type="submit"]');
      }
      await onPage(page, 'account');
      await page.locator('#account-email').filter({ hasText: email }).waitFor();
    }
    await page.locator('#mfa-state').filter({ hasText: '8 recovery codes left' }).waitFor();
  });

  await step('turn two-factor authentication off with the password and a code', async () => {
    await page.fill('#mfa-manage-password', NEW_PASSWORD);
    await page.fill('#mfa-manage-code', recoveryCodes[2]);
    await page.getByRole('button', { name: 'Turn off' }).click();
    await page.locator('#mfa-state').filter({ hasText: 'Off' }).waitFor();
    await page.locator('#notice').filter({ hasText: 'Two-factor authentication is off' }).waitFor();
  });

  // ---- passkeys: Chromium's virtual authenticator (DevTools protocol, WebAuthn domain) --------
  const passkeyBase = `http://localhost:${port}`;
  const passkeyContext = await browser.newContext({ viewport: DESKTOP });
  const pk = await passkeyContext.newPage();
  watch(pk, problems);
  const cdp = await passkeyContext.newCDPSession(pk);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  const logInWithPassword = async () => {
    await onPage(pk, 'login');
    await pk.fill('#email', passkeyEmail);
    await pk.fill('#password', PASSWORD);
    await pk.click('button[type="submit"]');
  };

  // An account of its own: the re-authentication budget (5 per account in 15 minutes) is the
  // first user's to spend.
  const passkeyEmail = `carol.${id}@example.com`;
  await step('passkeys: add one on the account page (password again), stored on the authenticator', async () => {
    await pk.goto(`${passkeyBase}/ui/signup`);
    const signedUp = await pk.evaluate(async (body) => (await fetch('/signup', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })).status, { email: passkeyEmail, password: PASSWORD });
    check(signedUp === 201, `signup: ${signedUp}`);
    const otp = await sink.code(passkeyEmail, 'verification', 0);
    const verified = await pk.evaluate(async (body) => (await fetch('/verify-otp', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })).status, { email: passkeyEmail, otp });
    check(verified === 200, `verify: ${verified}`);
    await pk.goto(`${passkeyBase}/ui/login`);
    await logInWithPassword();
    await onPage(pk, 'account');
    await pk.locator('#passkey-state').filter({ hasText: 'No passkey yet' }).waitFor();
    await pk.fill('#passkey-name', 'laptop');
    await pk.fill('#passkey-password', PASSWORD);
    await pk.getByRole('button', { name: 'Add a passkey' }).click();
    await pk.locator('#passkey-list li').filter({ hasText: 'laptop' }).waitFor();
    await pk.locator('#notice').filter({ hasText: 'was added' }).waitFor();
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    check(credentials.length === 1 && credentials[0].isResidentCredential, `one discoverable credential: ${JSON.stringify(credentials.map((c) => c.isResidentCredential))}`);
    await shot(pk, 'account-passkeys', DESKTOP.width);
  });

  await step('passkeys: sign in without typing an address', async () => {
    await pk.getByRole('button', { name: 'Log out', exact: true }).click();
    await onPage(pk, 'login');
    await pk.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await onPage(pk, 'account');
    await pk.locator('#account-email').filter({ hasText: passkeyEmail }).waitFor();
    await pk.locator('#passkey-list li').filter({ hasText: 'last used' }).waitFor();
  });

  await step('passkeys: the second step instead of a code from the app', async () => {
    // TOTP on through the API (the enrolment page is tested above).
    const enrolled = await pk.evaluate(async (password) => {
      const r = await fetch('/me/mfa/totp', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ password }) });
      return r.json();
    }, PASSWORD);
    const secret = enrolled.secret;
    const confirmed = await pk.evaluate(async (code) => {
      const r = await fetch('/me/mfa/totp/confirm', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ code }) });
      return r.json();
    }, totp(secret, currentStep()));
    check(Array.isArray(confirmed.recovery_codes), `TOTP on: ${JSON.stringify(confirmed)}`);
    await pk.reload();
    await pk.getByRole('button', { name: 'Log out', exact: true }).click();
    await logInWithPassword();
    await onPage(pk, 'login-mfa');
    await pk.getByRole('button', { name: 'Use a passkey instead' }).click();
    await onPage(pk, 'account');
    await pk.locator('#account-email').filter({ hasText: passkeyEmail }).waitFor();
    // TOTP off again with a recovery code, for the steps after these.
    const off = await pk.evaluate(async (body) => {
      const r = await fetch('/me/mfa/totp', { method: 'DELETE', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      return r.status;
    }, { password: PASSWORD, code: confirmed.recovery_codes[0] });
    check(off === 204, `TOTP off: ${off}`);
  });

  await step('passkeys: remove the one that opened this session (password again): the session ends, and the passkey signs nobody in any more', async () => {
    await pk.reload();
    await onPage(pk, 'account');
    await pk.locator('#passkey-list li').filter({ hasText: 'laptop' }).waitFor();
    await pk.fill('#passkey-password', PASSWORD);
    await pk.getByRole('button', { name: 'Remove' }).click();
    // This session was opened by that passkey (the second step above), so it ends with it:
    // the page goes to the login page.
    await onPage(pk, 'login');
    await pk.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await pk.locator('#form-error').filter({ hasText: 'passkey was not accepted' }).waitFor();
    await passkeyContext.close();
  });

  await step('on plain http with a host name other than localhost, the login page says what to do', async () => {
    const other = await browser.newContext({ viewport: DESKTOP });
    const p = await other.newPage();
    watch(p, problems);
    const secure = process.env.COOKIE_SECURE !== 'false';
    await p.goto(`${base.replace('127.0.0.1', 'secureauth.test')}/ui/login`);
    await p.fill('#email', email);
    await p.fill('#password', NEW_PASSWORD);
    await p.click('button[type="submit"]');
    if (secure) {
      // The browser drops the Secure cookie on plain http: the page tells the fix.
      await p.locator('#form-error').filter({ hasText: 'COOKIE_SECURE=false' }).waitFor();
    } else {
      await onPage(p, 'account');
      await p.locator('#account-email').filter({ hasText: email }).waitFor();
    }
    await other.close();
  });

  await step('the account page lists each session with its device, marks this device and ends another', async () => {
    await login(mobile, base, email, NEW_PASSWORD);
    await page.goto(`${base}/ui/account`);
    await onPage(page, 'account');
    await page.locator('#sessions-list li').nth(1).waitFor();
    const listed = await page.locator('#sessions-list li').count();
    check(listed >= 2, `both devices listed (${listed})`);
    const mine = page.locator('#sessions-list li', { hasText: 'This device' });
    check((await mine.count()) === 1, 'this device marked once');
    check(/ on /.test(await mine.innerText()), 'browser and system shown');
    await shot(page, 'account-sessions', DESKTOP.width);
    await mobile.reload();
    await onPage(mobile, 'account');
    await mobile.locator('#sessions-list li').nth(1).waitFor();
    const width = await mobile.evaluate(() => document.documentElement.scrollWidth);
    check(width <= PHONE.width, `account with its sessions is ${width} px wide on a phone`);
    await shot(mobile, 'account-sessions', PHONE.width);
    // End every other session, one button at a time.
    for (let left = listed; left > 1; left--) {
      await page.locator('#sessions-list li', { hasNotText: 'This device' }).first().getByRole('button', { name: /^End/ }).click();
      await page.locator('#notice').filter({ hasText: 'session was ended' }).waitFor();
      await page.locator('#sessions-list li').nth(left - 1).waitFor({ state: 'detached' });
    }
    await mobile.reload();
    await onPage(mobile, 'login');
  });

  await step('change the password on the account page: a wrong current password changes nothing', async () => {
    const change = async (current, next) => {
      await page.fill('#password-current_password', current);
      await page.fill('#password-new_password', next);
      const [res] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith('/change-password')),
        page.getByRole('button', { name: 'Change password', exact: true }).click(),
      ]);
      return res.status();
    };
    check((await change('certainly not the password', THIRD_PASSWORD)) === 403, 'wrong current password refused');
    await page.locator('#password-current_password-error').filter({ hasText: 'Nothing was changed' }).waitFor();
    check((await change(NEW_PASSWORD, THIRD_PASSWORD)) === 204, 'password changed');
    await page.locator('#notice').filter({ hasText: 'password was changed' }).waitFor();
    check((await page.inputValue('#password-current_password')) === '', 'password fields emptied');
    // And back, so the steps below keep their password.
    check((await change(THIRD_PASSWORD, NEW_PASSWORD)) === 204, 'password changed back');
  });

  await step('change the address on the account page with the code mailed to the new address', async () => {
    const newEmail = `moved.${id}@example.com`;
    const move = async (to) => {
      await page.fill('#email-new_email', to);
      await page.fill('#email-password', NEW_PASSWORD);
      await page.getByRole('button', { name: 'Send a code' }).click();
      await page.locator('#email-confirm-hint').filter({ hasText: to }).waitFor();
      return sink.code(to, 'address change', 0);
    };
    const code = await move(newEmail);
    await shot(page, 'account-email-change', DESKTOP.width);
    await page.fill('#email-otp', code);
    await page.getByRole('button', { name: 'Change my address' }).click();
    await page.locator('#account-email').filter({ hasText: newEmail }).waitFor();
    await page.locator('#notice').filter({ hasText: 'email address is now' }).waitFor();
    await page.locator('#email-confirm-form').waitFor({ state: 'hidden' });
    // And back, so the steps below keep their address.
    const back = await move(email);
    await page.fill('#email-otp', back);
    await page.getByRole('button', { name: 'Change my address' }).click();
    await page.locator('#account-email').filter({ hasText: email }).waitFor();
  });

  await step('delete the account: a wrong password changes nothing, the right one ends it', async () => {
    await page.goto(`${base}/ui/account`);
    await onPage(page, 'account');
    await page.locator('#account-email').filter({ hasText: email }).waitFor();
    await page.fill('#delete-password', 'certainly not the password');
    await page.getByRole('button', { name: 'Delete my account' }).click();
    await page.locator('#delete-password-error').filter({ hasText: 'Nothing was deleted' }).waitFor();
    check((await page.getAttribute('#delete-password', 'aria-invalid')) === 'true', 'wrong password marked on its field');
    check((await page.inputValue('#delete-password')) === '', 'password field emptied');
    await page.reload();
    await onPage(page, 'account');
    await page.locator('#account-email').filter({ hasText: email }).waitFor();
    await shot(page, 'account-delete', DESKTOP.width);
    await page.fill('#delete-password', NEW_PASSWORD);
    await page.getByRole('button', { name: 'Delete my account' }).click();
    await onPage(page, 'signup');
    await page.locator('#notice').filter({ hasText: 'account was deleted' }).waitFor();
    await page.goto(`${base}/ui/account`);
    await onPage(page, 'login');
    await page.fill('#email', email);
    await page.fill('#password', NEW_PASSWORD);
    await page.click('button[type="submit"]');
    await page.locator('#form-error').filter({ hasText: 'Invalid email or password, or the address is not verified yet.' }).waitFor();
  });

  // ---- administration: a user made with `auth-http admin create`, a person to look after ---------
  const adminEmail = `root.${id}@example.com`;
  const bobEmail = `bob.${id}@example.com`;
  const bobPage = await (await browser.newContext({ viewport: DESKTOP })).newPage();
  watch(bobPage, problems);

  await step('auth-http admin create makes an administrator, the password read from stdin', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'secureauth-admin-'));
    cleanups.push(() => rmSync(work, { recursive: true, force: true }));
    const made = spawnSync(bin, ['admin', 'create', adminEmail], {
      cwd: work,
      input: `${PASSWORD}\n`,
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: work, APP_ENV: 'development', DATABASE_URL: dbUrl.toString(), MAIL_DIR: path.join(work, 'mail'), LOG_FORMAT: 'json', RUST_LOG: 'warn' },
    });
    check(made.status === 0, `admin create failed: ${made.stderr}`);
    check(!made.stdout.includes(PASSWORD), 'the password is not echoed');
    // Bob signs up and logs in in a browser of his own.
    await bobPage.goto(`${base}/ui/signup`);
    await bobPage.fill('#email', bobEmail);
    await bobPage.fill('#password', PASSWORD);
    await bobPage.click('button[type="submit"]');
    await onPage(bobPage, 'verify');
    await bobPage.fill('#otp', await sink.code(bobEmail, 'verification', 0));
    await bobPage.click('button[type="submit"]');
    await onPage(bobPage, 'login');
    await login(bobPage, base, bobEmail, PASSWORD);
  });

  await step('an ordinary account sees no administration', async () => {
    await bobPage.goto(`${base}/ui/admin`);
    await bobPage.locator('#form-error').filter({ hasText: 'administrator' }).waitFor();
    check(await bobPage.locator('#search').isHidden(), 'no search for a non-administrator');
  });

  await step('the admin page asks for the password again, then finds Bob and shows his session', async () => {
    await login(page, base, adminEmail, PASSWORD);
    await page.goto(`${base}/ui/admin`);
    await page.locator('#reauth-form').waitFor();
    await page.fill('#reauth-password', 'not the password at all');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.locator('#form-error').filter({ hasText: 'password is wrong' }).waitFor();
    await page.fill('#reauth-password', PASSWORD);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.locator('#search').waitFor();
    await page.fill('#search-email', `bob.${id}`);
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByRole('button', { name: `Open ${bobEmail}` }).click();
    await page.locator('#user-email').filter({ hasText: bobEmail }).waitFor();
    await page.locator('#user-session-count').filter({ hasText: '1' }).waitFor();
    await shot(page, 'admin', DESKTOP.width);
  });

  await step('ending Bob\'s sessions logs him out; disabling keeps him out; enabling lets him back', async () => {
    await page.getByRole('button', { name: 'End every session' }).click();
    await page.locator('#notice').filter({ hasText: 'Every session' }).waitFor();
    await page.locator('#user-session-count').filter({ hasText: '0' }).waitFor();
    await bobPage.goto(`${base}/ui/account`);
    await onPage(bobPage, 'login');
    await login(bobPage, base, bobEmail, PASSWORD);
    await page.getByRole('button', { name: 'Disable the account' }).click();
    await page.locator('#user-state').filter({ hasText: 'Disabled' }).waitFor();
    await bobPage.reload();
    await onPage(bobPage, 'login');
    await bobPage.fill('#email', bobEmail);
    await bobPage.fill('#password', PASSWORD);
    await bobPage.click('button[type="submit"]');
    await bobPage.locator('#form-error').filter({ hasText: 'disabled' }).waitFor();
    await shot(page, 'admin-disabled', DESKTOP.width);
    await page.getByRole('button', { name: 'Enable the account' }).click();
    await page.locator('#user-state').filter({ hasText: 'Active' }).waitFor();
    await login(bobPage, base, bobEmail, PASSWORD);
  });

  await step('the admin page fits a phone screen (390 px)', async () => {
    await login(mobile, base, adminEmail, PASSWORD);
    await mobile.goto(`${base}/ui/admin`);
    await mobile.locator('#reauth-form').waitFor();
    await mobile.fill('#reauth-password', PASSWORD);
    await mobile.getByRole('button', { name: 'Continue' }).click();
    await mobile.locator('#results li').first().waitFor();
    await mobile.getByRole('button', { name: `Open ${bobEmail}` }).click();
    await mobile.locator('#user-email').filter({ hasText: bobEmail }).waitFor();
    const width = await mobile.evaluate(() => document.documentElement.scrollWidth);
    const wide = await mobile.evaluate((w) => [...document.querySelectorAll('body *')]
      .filter((el) => el.getBoundingClientRect().right + window.scrollX > w)
      .map((el) => `${el.tagName.toLowerCase()}#${el.id}.${el.className} ${Math.round(el.getBoundingClientRect().width)}`).slice(0, 6).join(', '), PHONE.width);
    check(width <= PHONE.width, `admin is ${width} px wide on a phone (${wide})`);
    await shot(mobile, 'admin', PHONE.width);
  });

  await step('/docs renders every operation under its own Content-Security-Policy', async () => {
    const res = await page.goto(`${base}/docs/`);
    const csp = res.headers()['content-security-policy'] || '';
    check(csp.includes("default-src 'none'") && !csp.includes('unsafe'), `CSP of /docs: ${csp}`);
    await page.locator('.opblock').first().waitFor();
    const operations = await page.locator('.opblock').count();
    check(operations >= 10, `${operations} operations rendered`);
    await page.locator('.opblock-summary').first().click();
    await page.getByRole('button', { name: 'Try it out' }).first().waitFor();
    await shot(page, 'docs', DESKTOP.width);
  });

  await step('no script errors and no Content-Security-Policy violations', async () => {
    check(problems.length === 0, problems.join('\n'));
  });
  check(signupMails === 1, 'one signup');
}

let finishing = false;
async function finish(code) {
  if (finishing) return;
  finishing = true;
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch (e) {
      console.log(`cleanup: ${e.message}`);
    }
  }
  console.log(`browser test: ${elapsed()}, screenshots in ${SHOTS}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(code);
}

main().then(
  () => finish(failed ? 1 : 0),
  (e) => {
    if (!failed) {
      failed += 1;
      console.log(`FAIL ${e && e.stack ? e.stack : e}`);
    }
    finish(1);
  },
);
