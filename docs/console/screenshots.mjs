// Takes the console screenshots in docs/console/*.png (README "Console").
// Run by hand: bash docs/console/screenshots.sh (builds the binary and installs
// tests/browser's packages first). It starts the real binary on a temp SQLite
// database, seeds made-up demo data (no real person's data) through the SCIM and
// admin APIs, trips the brake with a mass deletion, and photographs the pages in
// Debian's Chromium.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBrowser, newPage, signIn, startServer } from '../../tests/browser/harness.mjs';

const out = dirname(fileURLToPath(import.meta.url));

const POLICY = `[default]
grace_period = "30d"
targets = ["manager"]
kinds = { schedule = "orphan", draft = "delete" }
brake = { max_disposals_per_hour = 3 }
`;

const T = 'demo';
const app = await startServer({ policy: POLICY });
const browser = await launchBrowser();
try {
  const scim = app.scim(T);
  const admin = app.admin(T);
  const chair = await scim.createUser('dana.whitfield@example.edu', { displayName: 'Dana Whitfield' });
  const staff = [
    'avery.quill@example.edu',
    'rowan.tessaro@example.edu',
    'jules.marchetti@example.edu',
    'kit.abernathy@example.edu',
    'noor.valtonen@example.edu',
    'emery.solberg@example.edu',
  ];
  const ids = {};
  for (const [i, u] of staff.entries()) {
    ids[u] = await scim.createUser(u, { manager: chair });
    await admin.item('recording', `lecture-${i + 1}`, ids[u], `Lecture ${i + 1}: Introduction`);
    await admin.item('schedule', `timetable-${i + 1}`, ids[u], `Timetable, term ${i + 1}`);
    await admin.item('draft', `draft-${i + 1}`, ids[u], `Unpublished draft ${i + 1}`);
  }
  // The person shown with a plan: active, with content of every kind.
  const shown = await scim.createUser('morgan.ellery@example.edu', { manager: chair, displayName: 'Morgan Ellery' });
  for (let i = 1; i <= 3; i++) await admin.item('recording', `seminar-${i}`, shown, `Research seminar ${i}`);
  await admin.item('schedule', 'office-hours', shown, 'Office hours');
  await admin.item('draft', 'paper-notes', shown, 'Paper notes');
  // A suspended person (disposal in 30 days) and a mass deletion: 3 done, the 4th trips the brake.
  await scim.deactivate(ids[staff[5]]);
  for (const u of staff.slice(0, 5)) await scim.remove(ids[u]);

  const page = await newPage(browser, { viewport: { width: 1200, height: 800 } });
  await signIn(page, app.url, app.token(T, 'admin', 'console-admin'));
  const shot = async (name, path) => {
    await page.goto(`${app.url}${path}`);
    await page.screenshot({ path: join(out, `${name}.png`), fullPage: true });
    console.log(`wrote docs/console/${name}.png`);
  };
  await shot('overview', '/console/');
  await shot('person', `/console/people/${shown}`);
  await shot('disposals', '/console/disposals');
  // Tombstones: the answer for a disposed person's userName.
  await page.goto(`${app.url}/console/tombstones`);
  await page.getByLabel('Identifier', { exact: true }).fill(staff[0]);
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: /check/i }).click()]);
  await page.screenshot({ path: join(out, 'tombstones.png'), fullPage: true });
  console.log('wrote docs/console/tombstones.png');
  await shot('audit', '/console/audit');
} finally {
  await browser.close();
  await app.stop();
}
