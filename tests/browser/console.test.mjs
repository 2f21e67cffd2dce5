// The console in a real browser: Debian's Chromium driven by playwright-core
// against the real `custodian` binary (SQLite; and PostgreSQL when
// CUSTODIAN_TEST_PG_URL is set). Each step asserts on what the page shows and
// on the database afterwards (admin API, or sqlite3/psql).
//
//   cd tests/browser && npm ci && npm test      (after `cargo build`)

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { AXE_SOURCE, backends, freePort, launchBrowser, newPage, signIn, startServer, until } from './harness.mjs';

// acme: the brake trips on the 4th disposal in an hour (the mass deletion);
// calm: everything else, with the default brake. Items go to the manager; a
// person without one leaves orphans; schedules are always orphaned, drafts deleted.
// hooks: one webhook endpoint, down at first (nothing listens on its port).
const policy = (hookPort) => `[default]
targets = ["manager"]
kinds = { schedule = "orphan", draft = "delete" }

[tenants.acme]
brake = { max_disposals_per_hour = 3 }

[tenants.hooks]
webhooks = [{ url = "http://127.0.0.1:${hookPort}/hook", secret_env = "BROWSER_TEST_HOOK_SECRET" }]
`;

const XSS_SCRIPT = '<script>alert(1)</script>';
const XSS_IMG = '"><img src=x onerror=alert(1)>';

/** The session cookie's name. */
const SESSION = 'custodian_console';

const truthy = (v) => ['t', 'true', '1'].includes(String(v).trim());

/** Clicks `button` (a locator) and waits for the navigation it starts; returns the final response. */
async function submit(page, button) {
  const [resp] = await Promise.all([page.waitForNavigation(), button.click()]);
  return resp;
}

/** The one-line text of the element with `data-testid`. */
async function testid(page, id) {
  return (await page.getByTestId(id).first().innerText()).trim();
}

async function flash(page) {
  return (await page.locator('p[role="status"]').first().innerText()).trim();
}

for (const backend of backends()) {
  describe(`console in Chromium (${backend})`, { concurrency: false }, () => {
    let app;
    let browser;
    let page;
    const ids = {};
    let tenantId;
    let hookPort;

    before(async () => {
      hookPort = await freePort();
      app = await startServer({
        backend,
        policy: policy(hookPort),
        // A failing endpoint retries after 1 s and is paused once its failures span 1 s.
        env: {
          BROWSER_TEST_HOOK_SECRET: `whsec_${randomBytes(32).toString('base64')}`,
          CUSTODIAN_WEBHOOK_RETRY_BASE_SECONDS: '1',
          CUSTODIAN_WEBHOOK_PAUSE_AFTER_SECONDS: '1',
        },
      });
      browser = await launchBrowser();
      const acme = app.scim('acme');
      const calm = app.scim('calm');
      // acme: a manager and six reports, each owning a recording and a draft.
      ids.boss = await acme.createUser('boss@acme.test');
      ids.reports = [];
      for (let i = 1; i <= 6; i++) {
        const id = await acme.createUser(`report${i}@acme.test`, { manager: ids.boss });
        ids.reports.push(id);
        await app.admin('acme').item('recording', `rec-${i}`, id);
        await app.admin('acme').item('draft', `draft-${i}`, id);
      }
      // calm: a keeper, a person to dispose now, a leaver without a manager, one to freeze.
      ids.keeper = await calm.createUser('keeper@calm.test');
      ids.mover = await calm.createUser('mover@calm.test', { manager: ids.keeper });
      await app.admin('calm').item('recording', 'mover-1', ids.mover);
      await app.admin('calm').item('draft', 'mover-draft', ids.mover);
      ids.leaver = await calm.createUser('leaver@calm.test');
      await app.admin('calm').item('schedule', 'sched-1', ids.leaver);
      await app.admin('calm').item('recording', 'leaver-rec', ids.leaver);
      ids.frozen = await calm.createUser('frozen@calm.test', { manager: ids.keeper });
      await app.admin('calm').item('recording', 'frozen-1', ids.frozen);
      ids.xssScript = await calm.createUser(XSS_SCRIPT, { externalId: 'x1' });
      ids.xssImg = await calm.createUser(XSS_IMG, { externalId: 'x2' });
      await app.admin('calm').item('recording', 'xss-1', ids.xssScript);
      ids.suspended = await calm.createUser('sleeper@calm.test', { manager: ids.keeper });
      await calm.deactivate(ids.suspended);
      // Another tenant, for the 404s.
      ids.stranger = await app.scim('other').createUser('stranger@other.test');
      // hooks: an event for its (failing) endpoint.
      ids.hooked = await app.scim('hooks').createUser('hooked@hooks.test');
      await app.scim('hooks').deactivate(ids.hooked);
      tenantId = (name) => app.sql(`SELECT id FROM tenants WHERE name = '${name}'`)[0][0];
    });

    after(async () => {
      await browser?.close();
      await app?.stop();
    });

    test('sign-in: no session redirects; wrong, scim and gate tokens refused; admin signs in', async () => {
      page = await newPage(browser);
      const r = await page.goto(`${app.url}/console/`);
      assert.equal(new URL(page.url()).pathname, '/console/signin', 'redirected to the sign-in page');
      assert.equal(r.status(), 200);
      for (const [what, tok] of [
        ['a malformed token', 'not-a-token'],
        ['a wrong secret', app.token('calm', 'admin', 'console-admin').replace(/.$/, (c) => (c === 'a' ? 'b' : 'a'))],
        ['a scim token', app.token('calm', 'scim')],
        ['a gate token', app.token('calm', 'gate')],
      ]) {
        const resp = await signIn(page, app.url, tok);
        assert.ok([401, 403].includes(resp.status()), `${what}: ${resp.status()}`);
        await assert.doesNotReject(page.getByRole('alert').first().waitFor(), `${what}: an alert`);
        const cookies = await page.context().cookies();
        assert.ok(!cookies.some((c) => c.name === SESSION), `${what}: no session cookie (${JSON.stringify(cookies)})`);
        const again = await page.goto(`${app.url}/console/`);
        assert.equal(new URL(again.url()).pathname, '/console/signin', `${what}: still signed out`);
      }
      const ok = await signIn(page, app.url, app.token('calm', 'admin', 'console-admin'));
      assert.equal(ok.status(), 200);
      assert.equal(new URL(page.url()).pathname, '/console/');
      const nav = page.getByRole('navigation', { name: 'Console' });
      for (const link of ['Overview', 'People', 'Disposals', 'Orphans', 'Tombstones', 'Webhooks', 'Audit', 'Policy']) {
        await assert.doesNotReject(nav.getByRole('link', { name: link, exact: true }).waitFor(), link);
      }
      const cookie = (await page.context().cookies()).find((c) => c.name === SESSION);
      assert.ok(cookie, 'a session cookie');
      assert.equal(cookie.httpOnly, true);
      assert.equal(cookie.sameSite, 'Strict');
      assert.equal(cookie.path, '/console');
      // The session is a row, and only a hash of the cookie's value is stored.
      const dump = app.sql('SELECT * FROM console_sessions').flat().join('|');
      assert.ok(dump.length > 0, 'a session row');
      assert.ok(!dump.includes(cookie.value), 'the session id is not stored in the clear');
      await page.context().close();
    });

    test('keyboard: tabbing through the sign-in page reaches the button with a visible focus', async () => {
      const p = await newPage(browser);
      await p.goto(`${app.url}/console/signin`);
      const seen = [];
      for (let i = 0; i < 12; i++) {
        await p.keyboard.press('Tab');
        const el = await p.evaluate(() => {
          const a = document.activeElement;
          return a ? { tag: a.tagName, id: a.id, text: a.textContent.trim() } : null;
        });
        seen.push(el);
        if (el?.tag === 'BUTTON' && el.text === 'Sign in') break;
      }
      assert.ok(seen.some((e) => e?.id === 'token'), `the token field takes focus: ${JSON.stringify(seen)}`);
      const last = seen[seen.length - 1];
      assert.equal(last?.text, 'Sign in', `Tab reaches the button: ${JSON.stringify(seen)}`);
      const focus = await p.evaluate(() => {
        const b = document.activeElement;
        const s = getComputedStyle(b);
        return {
          focusVisible: b.matches(':focus-visible'),
          outlineStyle: s.outlineStyle,
          outlineWidth: parseFloat(s.outlineWidth),
          boxShadow: s.boxShadow,
        };
      });
      assert.ok(focus.focusVisible, 'the button matches :focus-visible');
      assert.ok(
        (focus.outlineStyle !== 'none' && focus.outlineWidth > 0) || (focus.boxShadow && focus.boxShadow !== 'none'),
        `a visible focus indicator: ${JSON.stringify(focus)}`,
      );
      // Back to the field, type the token, Tab to the button, Enter: signed in without the mouse.
      await p.keyboard.press('Shift+Tab');
      assert.equal(await p.evaluate(() => document.activeElement.id), 'token');
      await p.keyboard.type(app.token('calm', 'admin', 'console-admin'));
      await p.keyboard.press('Tab');
      assert.equal(await p.evaluate(() => document.activeElement.textContent.trim()), 'Sign in');
      await Promise.all([p.waitForNavigation(), p.keyboard.press('Enter')]);
      assert.equal(new URL(p.url()).pathname, '/console/', 'signed in from the keyboard');
      await p.context().close();
    });

    test('worst day 1: a mass deletion trips the brake; review, release one, reset', async () => {
      const acme = app.scim('acme');
      for (const id of ids.reports.slice(0, 5)) await acme.remove(id);
      const held = await app.admin('acme').disposals('held');
      assert.equal(held.length, 2, 'the 4th disposal tripped the brake; the 5th is held by it');
      const p = await newPage(browser);
      await signIn(p, app.url, app.token('acme', 'admin', 'console-admin'));
      // The overview says so and links to the disposals page.
      const overview = await p.locator('main').innerText();
      assert.match(overview, /tripped/i, 'overview shows the brake tripped');
      await submit(p, p.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Disposals', exact: true }));
      assert.equal(new URL(p.url()).pathname, '/console/disposals');
      assert.equal(await testid(p, 'brake'), 'tripped');
      const boxes = p.locator('input[type="checkbox"][name="id"]');
      assert.equal(await boxes.count(), 2, 'two held disposals listed');
      for (const d of held) {
        const box = p.locator(`input[type="checkbox"][name="id"][value="${d.id}"]`);
        assert.equal(await box.count(), 1, `a checkbox for ${d.id}`);
        assert.ok(await box.getAttribute('aria-label'), 'the checkbox has an aria-label');
        // Its plan, to review before releasing: what a release would do now.
        const row = p.locator('tr', { has: box });
        assert.match(await row.innerText(), /1 recording transfer/, `${d.id}: the plan summary`);
        assert.match(await row.innerText(), /1 draft delete/, `${d.id}: the plan summary`);
      }
      // Release the first one.
      const [release, keep] = held;
      await p.locator(`input[type="checkbox"][name="id"][value="${release.id}"]`).check();
      const r = await submit(p, p.getByRole('button', { name: 'Release selected' }));
      assert.equal(r.status(), 200);
      assert.equal(new URL(p.url()).pathname, '/console/disposals', 'back on the page (PRG)');
      assert.ok((await flash(p)).length > 0, 'a status message');
      assert.equal(await p.locator(`input[name="id"][value="${release.id}"]`).count(), 0, 'released: no longer held');
      assert.equal(await p.locator(`input[name="id"][value="${keep.id}"]`).count(), 1, 'the other is still held');
      // Database: released disposal done, its recording with the manager, its draft gone.
      const done = await app.admin('acme').disposals('done');
      assert.ok(done.some((d) => d.id === release.id), 'the released disposal is done');
      assert.ok((await app.admin('acme').disposals('held')).some((d) => d.id === keep.id), 'the other is still held');
      const n = ids.reports.indexOf(release.userId) + 1;
      assert.ok(n > 0);
      assert.equal((await app.admin('acme').getItem('recording', `rec-${n}`)).owner, ids.boss);
      assert.equal((await app.admin('acme').call('GET', `/content/draft/draft-${n}`)).status, 404);
      // Reset the brake.
      await submit(p, p.getByRole('button', { name: 'Reset brake' }));
      assert.equal(await testid(p, 'brake'), 'ok');
      assert.ok((await flash(p)).length > 0);
      const [[tripped]] = app.sql(`SELECT COALESCE(brake_tripped_at, 'none') FROM tenant_counters WHERE tenant_id = '${tenantId('acme')}'`);
      assert.equal(tripped, 'none', 'the brake is re-armed in the database');
      const actors = app.sql(`SELECT actor FROM audit_log WHERE tenant_id = '${tenantId('acme')}' AND action = 'brake.reset'`);
      assert.equal(actors.length, 1);
      assert.match(actors[0][0], /console/, 'the audit row names the console');
      assert.match(actors[0][0], /console-admin/, 'and the token');
      await p.context().close();
    });

    test('worst day 2: freeze a person with legal hold, then lift it', async () => {
      const p = await newPage(browser);
      await signIn(p, app.url, app.token('calm', 'admin', 'console-admin'));
      await p.goto(`${app.url}/console/people/${ids.frozen}`);
      assert.equal((await p.locator('h1').innerText()).trim(), 'frozen@calm.test');
      const reason = p.getByLabel('Reason');
      if (await reason.count()) await reason.first().fill('Litigation hold 2026-17');
      await submit(p, p.getByRole('button', { name: 'Place legal hold' }));
      assert.ok((await flash(p)).length > 0);
      await assert.doesNotReject(p.getByRole('button', { name: 'Lift legal hold' }).waitFor());
      const hold = () => app.sql(`SELECT legal_hold FROM users WHERE id = '${ids.frozen}'`)[0][0];
      assert.ok(truthy(hold()), 'legal_hold set in the database');
      // Held: a dispose-now does not move anything.
      const r = await app.admin('calm').call('POST', `/users/${ids.frozen}/dispose`, undefined, {
        'if-match': (await app.admin('calm').plan(ids.frozen)).planHash,
      });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      assert.equal((await app.admin('calm').getItem('recording', 'frozen-1')).owner, ids.frozen, 'nothing moved');
      await p.reload();
      if (await reason.count()) await reason.first().fill('Case closed');
      await submit(p, p.getByRole('button', { name: 'Lift legal hold' }));
      await assert.doesNotReject(p.getByRole('button', { name: 'Place legal hold' }).waitFor());
      assert.ok(!truthy(hold()), 'legal_hold cleared in the database');
      const actions = app.sql(`SELECT action, actor FROM audit_log WHERE subject_id = '${ids.frozen}' ORDER BY at`);
      assert.ok(actions.some(([a, who]) => /legal.?hold/.test(a) && /console/.test(who)), JSON.stringify(actions));
      await p.context().close();
    });

    test('worst day 3: an orphan reassigned, a tombstone looked up and lifted', async () => {
      await app.scim('calm').remove(ids.leaver);
      assert.equal((await app.admin('calm').getItem('schedule', 'sched-1')).ownerState, 'orphaned');
      const p = await newPage(browser);
      await signIn(p, app.url, app.token('calm', 'admin', 'console-admin'));
      await p.goto(`${app.url}/console/orphans`);
      await p.locator('select#kind').selectOption('schedule');
      await submit(p, p.getByRole('button', { name: 'Filter' }));
      const text = await p.locator('main').innerText();
      assert.match(text, /sched-1/);
      assert.doesNotMatch(text, /leaver-rec/, 'filtered by kind');
      const owner = p.getByLabel(/New owner for .*sched-1/);
      // The type-ahead (the console's own script, under its CSP) offers people by
      // userName prefix, as data: a hostile userName is an option's value, never markup.
      const offered = (v) => p.locator('datalist#people-suggest option').evaluateAll((os, v) => os.some((o) => o.value === v), v);
      await owner.pressSequentially('<scr');
      await until('the hostile userName offered as text', () => offered(XSS_SCRIPT), 10000, 100);
      await owner.fill('');
      await owner.pressSequentially('keep');
      await until('keeper offered', () => offered('keeper@calm.test'), 10000, 100);
      assert.deepEqual(p.dialogs, [], 'no dialog fired');
      await owner.fill('keeper@calm.test');
      const row = p.locator('tr', { has: owner });
      await submit(p, row.getByRole('button', { name: 'Reassign' }));
      assert.ok((await flash(p)).length > 0);
      const item = await app.admin('calm').getItem('schedule', 'sched-1');
      assert.equal(item.owner, ids.keeper, 'reassigned in the database');
      assert.notEqual(item.ownerState, 'orphaned');

      // Tombstones: the leaver's userName is tombstoned, a made-up one is not.
      const asked = [];
      p.on('request', (r) => asked.push(r.url()));
      const check = async (identifier, kind) => {
        await p.goto(`${app.url}/console/tombstones`);
        await p.getByLabel('Identifier', { exact: true }).fill(identifier);
        const kinds = p.locator('select[name="kind"]');
        if (await kinds.count()) await kinds.selectOption({ label: kind }).catch(() => kinds.selectOption(kind));
        const resp = await submit(p, p.getByRole('button', { name: /check/i }));
        assert.ok(!p.url().includes(encodeURIComponent(identifier)) && !p.url().includes(identifier), 'not in the URL');
        return { status: resp.status(), result: await testid(p, 'tombstone-result') };
      };
      assert.equal((await check('nobody-ever@calm.test', 'userName')).result, 'Not tombstoned');
      const hit = await check('LEAVER@calm.test', 'userName');
      assert.equal(hit.result, 'Tombstoned', 'matched case-insensitively');
      for (const u of asked) assert.ok(!u.toLowerCase().includes('leaver'), `identifier in a URL: ${u}`);
      assert.equal(app.sql(`SELECT count(*) FROM tombstones WHERE tenant_id = '${tenantId('calm')}' AND lifted_at IS NULL`)[0][0], '1');
      await p.getByLabel('Reason').fill('Rehired; confirmed with HR');
      await submit(p, p.getByRole('button', { name: 'Lift tombstone' }));
      assert.ok((await flash(p)).length > 0);
      assert.equal(
        app.sql(`SELECT count(*) FROM tombstones WHERE tenant_id = '${tenantId('calm')}' AND lifted_at IS NULL`)[0][0],
        '0',
        'lifted in the database',
      );
      assert.equal((await check('leaver@calm.test', 'userName')).result, 'Not tombstoned');
      const lifted = app.sql(`SELECT actor FROM audit_log WHERE tenant_id = '${tenantId('calm')}' AND action LIKE 'tombstone%lift%'`);
      assert.ok(lifted.length >= 1 && /console/.test(lifted[0][0]), JSON.stringify(lifted));
      assert.ok(!app.log().includes('leaver@calm.test') && !app.log().includes('LEAVER@calm.test'), 'identifier not logged');
      await p.context().close();
    });

    test('worst day 4: dispose now with a stale plan is refused and shows the new plan; the fresh one disposes', async () => {
      const p = await newPage(browser);
      await signIn(p, app.url, app.token('calm', 'admin', 'console-admin'));
      // Find the person through the search form.
      await p.goto(`${app.url}/console/people`);
      await p.getByLabel('Search people').fill('mover@calm');
      await submit(p, p.getByRole('button', { name: /search/i }));
      await submit(p, p.getByRole('link', { name: 'mover@calm.test' }));
      assert.equal(new URL(p.url()).pathname, `/console/people/${ids.mover}`);
      assert.match(await testid(p, 'state'), /active/i);
      const shown = await testid(p, 'plan-hash');
      const api = await app.admin('calm').plan(ids.mover);
      assert.equal(shown, api.planHash, 'the page shows the API plan hash');
      const planText = await p.getByTestId('plan').innerText();
      assert.match(planText, /recording\s+transfer\s+1\b/, 'one recording moves');
      assert.match(planText, /draft\s+delete\s+1\b/, 'one draft is deleted');
      // The plan changes behind the admin's back.
      await app.admin('calm').item('recording', 'mover-2', ids.mover);
      const stale = await submit(p, p.getByRole('button', { name: 'Dispose now' }));
      assert.equal(stale.status(), 409);
      assert.match(await p.getByRole('alert').first().innerText(), /The plan changed/);
      const fresh = (await app.admin('calm').plan(ids.mover)).planHash;
      assert.notEqual(fresh, shown);
      assert.equal(await testid(p, 'plan-hash'), fresh, 'the new plan is shown');
      assert.match(await p.getByTestId('plan').innerText(), /recording\s+transfer\s+2\b/, 'now two recordings move');
      assert.equal((await app.admin('calm').disposals('done')).filter((d) => d.userId === ids.mover).length, 0, 'nothing disposed');
      assert.equal((await app.admin('calm').getItem('recording', 'mover-1')).owner, ids.mover, 'nothing moved');
      // Dispose with the plan now shown.
      const done = await submit(p, p.getByRole('button', { name: 'Dispose now' }));
      assert.equal(done.status(), 200);
      assert.ok((await flash(p)).length > 0);
      const disposed = (await app.admin('calm').disposals('done')).filter((d) => d.userId === ids.mover);
      assert.equal(disposed.length, 1, 'disposed in the database');
      assert.equal(disposed[0].planHash, fresh, 'with the plan the admin saw');
      for (const id of ['mover-1', 'mover-2']) assert.equal((await app.admin('calm').getItem('recording', id)).owner, ids.keeper);
      assert.equal((await app.admin('calm').call('GET', '/content/draft/mover-draft')).status, 404);
      // The person is now a stub: no PII on their page.
      await p.goto(`${app.url}/console/people/${ids.mover}`);
      assert.equal((await p.locator('h1').innerText()).trim(), 'Deleted User');
      assert.ok(!(await p.content()).includes('mover@calm.test'), 'no userName on the stub page');
      await p.context().close();
    });

    test('hostile userNames render as text; no script runs', async () => {
      const p = await newPage(browser);
      await signIn(p, app.url, app.token('calm', 'admin', 'console-admin'));
      const visit = async (path) => {
        await p.goto(`${app.url}${path}`);
        assert.equal(await p.locator('img[src="x"]').count(), 0, `${path}: no injected <img>`);
        assert.equal(await p.locator('script:not([src])').count(), 0, `${path}: no inline <script>`);
      };
      await visit(`/console/people?q=${encodeURIComponent(XSS_SCRIPT)}`);
      const main = await p.locator('main').innerText();
      assert.ok(main.includes(XSS_SCRIPT), 'the <script> userName shown as text');
      await visit(`/console/people?q=${encodeURIComponent(XSS_IMG)}`);
      assert.ok((await p.locator('main').innerText()).includes(XSS_IMG), 'the <img> userName shown as text');
      await visit(`/console/people/${ids.xssScript}`);
      assert.equal((await p.locator('h1').innerText()).trim(), XSS_SCRIPT);
      await visit(`/console/people/${ids.xssImg}`);
      assert.equal((await p.locator('h1').innerText()).trim(), XSS_IMG);
      await visit('/console/');
      await visit('/console/audit');
      assert.deepEqual(p.dialogs, [], 'no dialog fired');
      await p.context().close();
    });

    test('CSRF: a form posted without or with a wrong csrf token is refused; nothing changes', async () => {
      const p = await newPage(browser);
      await signIn(p, app.url, app.token('calm', 'admin', 'console-admin'));
      await p.goto(`${app.url}/console/people/${ids.keeper}`);
      const hold = () => truthy(app.sql(`SELECT legal_hold FROM users WHERE id = '${ids.keeper}'`)[0][0]);
      assert.equal(hold(), false);
      const button = p.getByRole('button', { name: 'Place legal hold' });
      const form = p.locator('form', { has: button });
      const reason = form.getByLabel('Reason');
      if (await reason.count()) await reason.fill('x');
      // Without the field.
      await form.locator('input[name="csrf"]').evaluate((i) => i.remove());
      let r = await submit(p, button);
      assert.equal(r.status(), 403);
      await assert.doesNotReject(p.getByRole('alert').first().waitFor(), 'a readable refusal');
      assert.equal(hold(), false, 'no legal hold placed');
      // With a wrong value.
      await p.goto(`${app.url}/console/people/${ids.keeper}`);
      if (await reason.count()) await reason.fill('x');
      await form.locator('input[name="csrf"]').evaluate((i) => {
        i.value = 'A'.repeat(i.value.length || 43);
      });
      r = await submit(p, button);
      assert.equal(r.status(), 403);
      assert.equal(hold(), false, 'no legal hold placed');
      // Another origin's POST is refused even with the right csrf value.
      await p.goto(`${app.url}/console/disposals`);
      const resetForm = p.locator('form', { has: p.getByRole('button', { name: 'Reset brake' }) });
      const action = await resetForm.evaluate((f) => f.getAttribute('action'));
      const fields = await resetForm.evaluate((f) => Object.fromEntries(new FormData(f, f.querySelector('button'))));
      assert.ok(fields.csrf, 'the form carries its csrf token');
      const resets = () => app.sql(`SELECT count(*) FROM audit_log WHERE action = 'brake.reset' AND tenant_id = '${tenantId('calm')}'`)[0][0];
      const other = await p.request.post(`${app.url}${action}`, {
        headers: { origin: 'https://evil.example' },
        form: fields,
        maxRedirects: 0,
      });
      assert.equal(other.status(), 403, 'cross-origin POST refused');
      // A page elsewhere with no-referrer sends `Origin: null`; Fetch Metadata gives it away.
      const hidden = await p.request.post(`${app.url}${action}`, {
        headers: { origin: 'null', 'sec-fetch-site': 'cross-site' },
        form: fields,
        maxRedirects: 0,
      });
      assert.equal(hidden.status(), 403, 'null-origin cross-site POST refused');
      assert.equal(resets(), '0', 'no brake reset');
      await p.context().close();
    });

    test('another tenant\'s person is a 404 page', async () => {
      const p = await newPage(browser);
      await signIn(p, app.url, app.token('calm', 'admin', 'console-admin'));
      const r = await p.goto(`${app.url}/console/people/${ids.stranger}`);
      assert.equal(r.status(), 404);
      assert.ok(!(await p.content()).includes('stranger@other.test'));
      await p.context().close();
    });

    test('an auditor gets a read-only console', async () => {
      const p = await newPage(browser);
      const r = await signIn(p, app.url, app.token('acme', 'auditor', 'console-auditor'));
      assert.equal(r.status(), 200);
      for (const path of ['/console/disposals', `/console/people/${ids.boss}`, '/console/orphans', '/console/tombstones']) {
        await p.goto(`${app.url}${path}`);
        const forms = await p.locator('form[method="post" i]').evaluateAll((fs) =>
          fs
            .filter((f) => f.querySelector('button, input[type="submit"]'))
            .map((f) => f.getAttribute('action'))
            .filter((a) => a !== '/console/signout' && a !== '/console/tombstones/check'),
        );
        assert.deepEqual(forms, [], `${path}: no action forms`);
      }
      // Posting anyway (the csrf of its own session) is refused, and nothing changes.
      await p.goto(`${app.url}/console/tombstones`);
      const csrf = await p.locator('input[name="csrf"]').first().getAttribute('value');
      const resets = () => app.sql(`SELECT count(*) FROM audit_log WHERE action = 'brake.reset'`)[0][0];
      const before = resets();
      const res = await p.request.post(`${app.url}/console/disposals`, { form: { csrf, action: 'reset_brake' }, maxRedirects: 0 });
      assert.equal(res.status(), 403);
      const hold = await p.request.post(`${app.url}/console/people/${ids.boss}/legal-hold`, { form: { csrf, reason: 'x' }, maxRedirects: 0 });
      assert.equal(hold.status(), 403);
      assert.equal(resets(), before, 'no brake reset');
      assert.ok(!truthy(app.sql(`SELECT legal_hold FROM users WHERE id = '${ids.boss}'`)[0][0]), 'no legal hold');
      await p.context().close();
    });

    test('axe-core: no serious or critical violation on any page', async () => {
      const p = await newPage(browser);
      const pages = [['sign-in', '/console/signin']];
      const runAxe = async (name) => {
        // Evaluated through the DevTools protocol (Runtime.evaluate), which the
        // page's CSP (script-src 'self') does not govern, so the page is checked
        // with its real headers; addScriptTag({content}) would be an inline
        // <script> and is blocked by that CSP (asserted below).
        await p.evaluate(AXE_SOURCE);
        const result = await p.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
        const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
        assert.deepEqual(
          bad.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
          [],
          `${name}: axe violations`,
        );
      };
      await p.goto(`${app.url}/console/signin`);
      await runAxe('sign-in');
      // The CSP holds: an inline script added to the page does not run.
      await p.addScriptTag({ content: 'window.__inline = 1;' }).catch(() => {});
      assert.equal(await p.evaluate(() => window.__inline), undefined, 'CSP blocked the inline script');
      await signIn(p, app.url, app.token('acme', 'admin', 'console-admin'));
      pages.push(
        ['overview', '/console/'],
        ['people', '/console/people?q=report'],
        ['person', `/console/people/${ids.reports[5]}`],
        ['disposals', '/console/disposals'],
        ['orphans', '/console/orphans'],
        ['tombstones', '/console/tombstones'],
        ['webhooks', '/console/webhooks'],
        ['audit', '/console/audit'],
        ['policy', '/console/policy'],
        ['not found', '/console/people/00000000-0000-0000-0000-000000000000'],
      );
      for (const [name, path] of pages.slice(1)) {
        await p.goto(`${app.url}${path}`);
        await runAxe(name);
      }
      // The tombstone answer page.
      await p.goto(`${app.url}/console/tombstones`);
      await p.getByLabel('Identifier', { exact: true }).fill('someone@acme.test');
      await submit(p, p.getByRole('button', { name: /check/i }));
      await runAxe('tombstone result');
      await p.context().close();
    });

    test('webhooks: a paused endpoint is shown and resumed; delivery goes on', async () => {
      const endpoints = async () => (await app.admin('hooks').ok('GET', '/webhooks')).Resources ?? [];
      await until('the failing endpoint to be paused', async () => (await endpoints())[0]?.paused === true, 60000, 250);
      const p = await newPage(browser);
      await signIn(p, app.url, app.token('hooks', 'admin', 'console-admin'));
      await p.goto(`${app.url}/console/webhooks`);
      const row = p.locator('tr', { hasText: `127.0.0.1:${hookPort}` });
      assert.match(await row.innerText(), /paused/);
      // Nothing listens: the last error is the transport's, with its time.
      assert.match(await row.innerText(), /transport: [^\n]+ at \d{4}-/);
      // The receiver comes back; the admin resumes it.
      const got = [];
      const receiver = createServer((req, res) => {
        got.push(req.headers['webhook-id']);
        req.resume();
        req.on('end', () => res.writeHead(204).end());
      });
      await new Promise((ok) => receiver.listen(hookPort, '127.0.0.1', ok));
      try {
        await submit(p, row.getByRole('button', { name: 'Resume' }));
        assert.ok((await flash(p)).length > 0);
        await until('the event to be delivered', async () => {
          const [e] = await endpoints();
          return e && !e.paused && e.lastDeliveredSeq > 0 && e.failedAttempts === 0;
        }, 30000, 250);
        assert.ok(got.length >= 1 && got.every((id) => typeof id === 'string' && id.startsWith('evt_')), JSON.stringify(got));
        await p.reload();
        assert.match(await p.locator('tr', { hasText: `127.0.0.1:${hookPort}` }).innerText(), /delivering/);
        const actors = app.sql(`SELECT actor FROM audit_log WHERE tenant_id = '${tenantId('hooks')}' AND action LIKE 'webhook%resume%'`);
        assert.ok(actors.length === 1 && /console/.test(actors[0][0]), JSON.stringify(actors));
      } finally {
        await new Promise((ok) => receiver.close(ok));
        await p.context().close();
      }
    });

    test('revoking the token ends its console session', async () => {
      const tok = app.token('calm', 'admin', 'revoked-soon');
      const p = await newPage(browser);
      await signIn(p, app.url, tok);
      assert.equal(new URL(p.url()).pathname, '/console/');
      app.cli(['token', 'revoke', tok.slice(5, 21)]);
      const r = await p.goto(`${app.url}/console/disposals`);
      assert.equal(new URL(r.url()).pathname, '/console/signin', 'sent back to sign in');
      await p.context().close();
    });

    test('sign out ends the session', async () => {
      const p = await newPage(browser);
      await signIn(p, app.url, app.token('calm', 'admin', 'console-admin'));
      const before = Number(app.sql('SELECT count(*) FROM console_sessions')[0][0]);
      await submit(p, p.getByRole('button', { name: 'Sign out' }));
      assert.equal(new URL(p.url()).pathname, '/console/signin');
      assert.equal(Number(app.sql('SELECT count(*) FROM console_sessions')[0][0]), before - 1, 'the row is deleted');
      const r = await p.goto(`${app.url}/console/`);
      assert.equal(new URL(r.url()).pathname, '/console/signin');
      await p.context().close();
    });
  });
}
