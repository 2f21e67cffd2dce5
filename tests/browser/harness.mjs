// The browser tests' harness: the real `custodian` binary on a free port over a
// fresh database (a temp SQLite file, or a PostgreSQL database of its own),
// tokens made with the CLI, data seeded through the real SCIM and admin APIs,
// and Debian's Chromium driven by playwright-core. Nothing is written into the
// source tree: every file lives in a temp dir removed by `stop()`.

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, '..', '..');

/** The binary under test: $CUSTODIAN_BIN, else target/debug/custodian (cargo builds it first). */
export const BIN = process.env.CUSTODIAN_BIN || join(REPO, 'target', 'debug', 'custodian');
/** Debian's Chromium (package `chromium`); $CHROMIUM overrides. */
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const SCIM_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

/** Polls `fn` until it returns a truthy value, at most `ms`; throws `what` after. */
export async function until(what, fn, ms = 15000, every = 50) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** A TCP port nothing listens on now. */
export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** The backends to run: SQLite always, PostgreSQL when CUSTODIAN_TEST_PG_URL is set. */
export function backends() {
  const list = ['sqlite'];
  if (process.env.CUSTODIAN_TEST_PG_URL) list.push('postgres');
  else console.error('# CUSTODIAN_TEST_PG_URL not set: the PostgreSQL run is skipped');
  return list;
}

/** A PostgreSQL URL with another database name. */
function withDatabase(url, db) {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

function psql(url, sql) {
  const r = spawnSync('psql', [url, '-v', 'ON_ERROR_STOP=1', '-qtAX', '-c', sql], {
    encoding: 'utf8',
    timeout: 30000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.status !== 0) throw new Error(`psql failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/**
 * Starts `custodian serve` over a fresh database with `policy` (TOML) as its
 * policy file. Returns the server handle: its base `url`, `token(tenant, scope)`,
 * `sql(query)` (rows as arrays of strings), `scim(tenant)`, `admin(tenant)`,
 * and `stop()`.
 */
export async function startServer({ backend = 'sqlite', policy = '[default]\n', env = {} } = {}) {
  if (!existsSync(BIN)) throw new Error(`${BIN} missing: run \`cargo build\` first (or set CUSTODIAN_BIN)`);
  const dir = mkdtempSync(join(tmpdir(), 'custodian-browser-'));
  const policyFile = join(dir, 'policy.toml');
  writeFileSync(policyFile, policy);
  let databaseUrl;
  let pgDb;
  const base = {
    CUSTODIAN_POLICY_FILE: policyFile,
    CUSTODIAN_LOG: 'info',
  };
  if (backend === 'postgres') {
    const admin = process.env.CUSTODIAN_TEST_PG_URL;
    pgDb = `custodian_browser_${randomBytes(6).toString('hex')}`;
    psql(admin, `CREATE DATABASE ${pgDb}`);
    databaseUrl = withDatabase(admin, pgDb);
    base.CUSTODIAN_TOMBSTONE_KEY = randomBytes(32).toString('hex');
    base.CUSTODIAN_JOURNAL_PATH = join(dir, 'journal.jsonl');
  } else {
    databaseUrl = `sqlite://${join(dir, 'custodian.db')}`;
  }
  base.CUSTODIAN_DATABASE_URL = databaseUrl;
  const childEnv = { ...cleanEnv(), ...base, ...env };

  const cli = (args) => {
    const r = spawnSync(BIN, args, { cwd: dir, env: childEnv, encoding: 'utf8', timeout: 60000 });
    if (r.status !== 0) throw new Error(`custodian ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    return r.stdout;
  };
  cli(['migrate']);

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logFile = join(dir, 'server.log');
  const child = spawn(BIN, ['serve', '--bind', `127.0.0.1:${port}`], {
    cwd: dir,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const keep = (b) => {
    log += b.toString();
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited = null;
  child.on('exit', (code, signal) => {
    exited = { code, signal };
  });
  try {
    await until('the server to answer /healthz', async () => {
      if (exited) throw new Error(`server exited ${JSON.stringify(exited)}:\n${log}`);
      const r = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
      return r.status === 200;
    }, 30000, 100);
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`${e.message}\n--- server log ---\n${log}`);
  }

  const tokens = new Map();
  /** A token of `scope` for `tenant` (the tenant is created the first time), made by the CLI. */
  const token = (tenant, scope, name = `${scope}-${tenant}`) => {
    const key = `${tenant}/${scope}/${name}`;
    if (!tokens.has(key)) {
      const out = cli(['token', 'create', '--tenant', tenant, '--create-tenant', '--scope', scope, '--name', name]);
      const line = out.trim().split('\n').pop().trim();
      if (!line.startsWith('cust_')) throw new Error(`no token on stdout: ${out}`);
      tokens.set(key, line);
    }
    return tokens.get(key);
  };

  /** JSON over HTTP with a bearer token; returns {status, body, headers}. */
  const call = async (tok, method, path, body, headers = {}) => {
    const r = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${tok}`,
        ...(body === undefined ? {} : { 'content-type': path.startsWith('/scim/') ? 'application/scim+json' : 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(20000),
    });
    const text = await r.text();
    let parsed = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    return { status: r.status, body: parsed, headers: r.headers };
  };

  const scim = (tenant) => {
    const tok = token(tenant, 'scim');
    return {
      call: (m, p, b) => call(tok, m, `/scim/v2${p}`, b),
      /** Creates a user; returns its id. */
      async createUser(userName, { manager, externalId, displayName } = {}) {
        const body = {
          schemas: [SCIM_USER],
          userName,
          externalId: externalId ?? `ext-${userName}`,
          displayName: displayName ?? userName,
          emails: userName.includes('@') ? [{ value: userName, type: 'work', primary: true }] : [],
          active: true,
        };
        if (manager) {
          body.schemas.push(ENTERPRISE);
          body[ENTERPRISE] = { manager: { value: manager } };
        }
        const r = await call(tok, 'POST', '/scim/v2/Users', body);
        if (r.status !== 201) throw new Error(`create ${userName}: ${r.status} ${JSON.stringify(r.body)}`);
        return r.body.id;
      },
      async deactivate(id) {
        const r = await call(tok, 'PATCH', `/scim/v2/Users/${id}`, {
          schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
          Operations: [{ op: 'replace', path: 'active', value: false }],
        });
        if (r.status !== 200 && r.status !== 204) throw new Error(`deactivate ${id}: ${r.status} ${JSON.stringify(r.body)}`);
      },
      async remove(id) {
        const r = await call(tok, 'DELETE', `/scim/v2/Users/${id}`);
        if (r.status !== 204) throw new Error(`delete ${id}: ${r.status} ${JSON.stringify(r.body)}`);
      },
    };
  };

  const admin = (tenant) => {
    const tok = token(tenant, 'admin', 'seed-admin');
    const a = {
      call: (m, p, b, h) => call(tok, m, `/admin/v1${p}`, b, h),
      async ok(m, p, b) {
        const r = await a.call(m, p, b);
        if (r.status >= 300) throw new Error(`${m} ${p}: ${r.status} ${JSON.stringify(r.body)}`);
        return r.body;
      },
      item: (kind, id, owner, title = `${kind} ${id}`) => a.ok('PUT', `/content/${kind}/${id}`, { owner, title }),
      getItem: (kind, id) => a.ok('GET', `/content/${kind}/${id}`),
      disposals: async (state) => (await a.ok('GET', `/disposals?state=${state}`)).Resources ?? [],
      plan: (userId) => a.ok('GET', `/users/${userId}/disposal-plan`),
      audit: async (q = '') => (await a.ok('GET', `/audit${q}`)).Resources ?? [],
      tombstones: async () => (await a.ok('GET', '/tombstones')).Resources ?? [],
    };
    return a;
  };

  /** Rows of a read-only SQL query against the server's database, each an array of strings. */
  const sql = (query) => {
    let out;
    if (backend === 'postgres') {
      out = psql(databaseUrl, query);
      return out.split('\n').filter((l) => l !== '').map((l) => l.split('|'));
    }
    const r = spawnSync('sqlite3', ['-readonly', '-batch', '-noheader', '-separator', '|', databaseUrl.slice('sqlite://'.length), query], {
      encoding: 'utf8',
      timeout: 30000,
    });
    if (r.status !== 0) throw new Error(`sqlite3 failed (${r.status}): ${r.stderr}`);
    return r.stdout.split('\n').filter((l) => l !== '').map((l) => l.split('|'));
  };

  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      try {
        await until('the server to exit', () => exited, 15000);
      } catch {
        child.kill('SIGKILL');
      }
    }
    if (pgDb) {
      try {
        psql(process.env.CUSTODIAN_TEST_PG_URL, `DROP DATABASE IF EXISTS ${pgDb} WITH (FORCE)`);
      } catch (e) {
        console.error(`# could not drop ${pgDb}: ${e.message}`);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };

  return { url, dir, backend, token, scim, admin, sql, stop, log: () => log, cli };
}

/** The environment without any CUSTODIAN_* the caller may have set. */
function cleanEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('CUSTODIAN_')) env[k] = v;
  }
  return env;
}

/** Chromium, headless, from $CHROMIUM or /usr/bin/chromium (no Playwright browser download). */
export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} missing: apt-get install chromium (or set CHROMIUM)`);
  // No network beyond localhost: background fetches, component updates and
  // QUIC only make failing connections on a closed network.
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60000,
    args: ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * A page in a fresh context that fails the test on any dialog (an XSS payload
 * that ran) and records console errors.
 */
export async function newPage(browser, opts = {}) {
  const context = await browser.newContext(opts);
  context.setDefaultTimeout(15000);
  context.setDefaultNavigationTimeout(20000);
  const page = await context.newPage();
  page.dialogs = [];
  page.on('dialog', async (d) => {
    page.dialogs.push(`${d.type()}: ${d.message()}`);
    await d.dismiss().catch(() => {});
  });
  return page;
}

/** Signs in through the sign-in form; returns the response of the final page. */
export async function signIn(page, base, token) {
  await page.goto(`${base}/console/signin`);
  await page.getByLabel('Admin token').fill(token);
  const [resp] = await Promise.all([
    page.waitForNavigation(),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  return resp;
}

/** The axe-core source, to inject into pages. */
export const AXE_SOURCE = readFileSync(join(here, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
