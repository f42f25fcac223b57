// The design UI in a real browser, against `kairos up` (crates/kairos-cli/tests/browser.rs
// starts it): log in with the keyboard, create an offer and a rule, see a validation error
// placed on its line, deploy to staging, have a reviewer approve, promote, roll back, open
// every page, on a desktop and a phone-sized viewport. Screenshots go to the folder given.
//
//   node tests/browser/ui.mjs http://127.0.0.1:7700 SCREENSHOTS_DIR
import { chromium } from 'playwright-core';
import { mkdirSync, statSync } from 'node:fs';
import assert from 'node:assert/strict';

const [base, shots] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
page.setDefaultTimeout(15000);

// A failure says where the browser was and what the page said there.
process.on('uncaughtException', async (error) => {
  const said = await page.locator('[role=alert], [role=status]').allInnerTexts().catch(() => []);
  console.error(`failed at ${page.url()}, the page saying ${JSON.stringify(said)}`);
  console.error(error);
  process.exit(1);
});

/** Every page: rendered, no error banner unless expected, every visible field labelled. */
async function check(name, { errorExpected = false } = {}) {
  const title = await page.locator('h1').innerText();
  assert.ok(title.length > 0, `${name}: a heading`);
  if (!errorExpected) {
    const errors = await page.locator('.error').allInnerTexts();
    assert.deepEqual(errors, [], `${name}: no error banner`);
  }
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
      .filter((f) => f.labels.length === 0 && !f.getAttribute('aria-label'))
      .map((f) => f.name || f.id));
  assert.deepEqual(unlabelled, [], `${name}: every field has a label`);
  const file = `${shots}/${name}.png`;
  await page.screenshot({ path: file, fullPage: true });
  assert.ok(statSync(file).size > 5000, `${name}: the screenshot shows something`);
}

// Log in with the keyboard only.
await page.goto(base + '/');
assert.match(page.url(), /\/ui\/login$/);
await check('login');
await page.getByLabel('User name').focus();
await page.keyboard.type('admin');
await page.keyboard.press('Tab');
await page.keyboard.type(process.env.KAIROS_ADMIN_PASSWORD);
await page.keyboard.press('Enter');
await page.waitForURL(/\/ui\/channels$/);
await check('channels');

// A new channel starts empty, its components added on its page.
await page.getByLabel(/^New channel/).fill('kiosk');
await page.getByRole('button', { name: 'Create the channel' }).click();
await page.getByText('created channel kiosk').waitFor();
assert.ok(await page.getByLabel('New zones and interaction points').isVisible());
await page.getByRole('navigation').getByRole('link', { name: 'Channels' }).click();

// The demo channel, with its treatment rules as a table.
await page.getByRole('link', { name: 'web', exact: true }).click();
await page.waitForURL(/\/ui\/channels\/web$/);
assert.ok(await page.locator('table').first().locator('tbody tr').count() > 10, 'the rules table');
assert.equal(await page.locator('svg.flowchart').count(), 2, 'both flowcharts drawn');
assert.match(await page.locator('svg.flowchart').first().textContent(), /→ young/);
await check('channel');

// A new offer, in its form, first with a category that does not exist: saved, and the
// error placed on the category field.
await page.getByLabel('New offers').fill('SPRING_SAVER');
await page.getByLabel('New offers').press('Enter');
await page.waitForURL(/\/edit\/offers\/SPRING_SAVER$/);
await page.getByLabel('Name', { exact: true }).fill('Spring saver');
await page.getByLabel('Category').fill('gadgets');
await page.getByLabel(/^Attributes/).fill('aer=4.4');
await page.getByRole('button', { name: 'Save' }).click();
const categoryError = page.locator('.field-error[data-field="category"]');
await categoryError.waitFor();
assert.match(await categoryError.innerText(), /gadgets/);
assert.equal(await page.getByLabel('Category').getAttribute('aria-invalid'), 'true');
await check('offer-with-error', { errorExpected: true });
await page.getByLabel('Category').fill('savings');
await page.getByRole('button', { name: 'Save' }).click();
await page.getByText(/Saved as revision \d+\./).waitFor();
assert.equal(await page.locator('.field-error').count(), 0);
// Two tabs edit the offer from the same revision: the second save is refused, shows the
// first one's version, and keeps what the second typed.
const other = await context.newPage();
await other.goto(page.url());
await page.getByLabel('Name', { exact: true }).fill('Spring saver, first tab');
await page.getByRole('button', { name: 'Save' }).click();
await page.getByText(/Saved as revision \d+\./).waitFor();
await other.getByLabel('Name', { exact: true }).fill('Spring saver, second tab');
await other.getByRole('button', { name: 'Save' }).click();
await other.getByText(/changed this component since you opened it/).waitFor();
assert.match(await other.locator('.error pre').innerText(), /first tab/);
assert.equal(await other.getByLabel('Name', { exact: true }).inputValue(), 'Spring saver, second tab');
await other.close();

// The same offer as JSON, shaped like its entry in the channel file.
await page.getByRole('link', { name: 'Edit as JSON' }).click();
assert.match(await page.getByLabel(/offers\/SPRING_SAVER/).inputValue(), /"aer": 4.4/);

// A rule offering it on the home page, its eligibility first mistyped: the error sits under
// the expression, a caret at the place.
await page.getByRole('link', { name: /Back to channel web/ }).click();
await page.getByLabel('New treatment rules').fill('spring_saver_home');
await page.getByLabel('New treatment rules').press('Enter');
await page.waitForURL(/\/edit\/rules\/spring_saver_home$/);
await page.getByLabel('Segment').fill('*');
await page.getByLabel('Zone').fill('home');
await page.getByLabel('Offer', { exact: true }).fill('SPRING_SAVER');
await page.getByLabel('Marketing score').fill('61');
await page.getByLabel('Eligibility').fill("profile.age > 'young'");
await page.getByRole('button', { name: 'Save' }).click();
const expressionError = page.locator('.field-error[data-field="eligibility"]');
await expressionError.waitFor();
assert.match(await expressionError.locator('pre.caret').innerText(), /\^/);
await check('rule-with-error', { errorExpected: true });
await page.getByLabel('Eligibility').fill('profile.age > 25');
await page.getByRole('button', { name: 'Save' }).click();
await page.getByText(/Saved as revision \d+\./).waitFor();
await page.getByRole('link', { name: /Back to channel web/ }).click();
await page.getByText('The design is valid').waitFor();
assert.ok(await page.getByRole('cell', { name: 'spring_saver_home' }).isVisible());

// Deploy to staging: version 2.
await page.getByLabel(/Deploy the design to staging/).fill('spring saver');
await page.getByRole('button', { name: 'Deploy to staging' }).click();
await page.getByText('version 2 is now active on staging').waitFor();
await check('versions');
// A scenario file run by the control plane against staging's runtime, recorded with version
// 2 for the gates; the run's page reloads itself until the run ends.
await page.getByLabel('Scenario file (YAML)').fill(`channel: web
scenarios:
  - name: the spring saver is offered on the home page
    start: { audience_id: { customer_id: 1001 }, params: { page: home } }
    steps:
      - get_offers: { ip: hero, count: 10 }
        expect: { contains: [ SPRING_SAVER ] }
`);
await page.getByRole('button', { name: 'Run the scenarios' }).click();
await page.waitForURL(/\/ui\/test-runs\//);
await page.getByText('Recorded with web version 2').waitFor();
assert.match(await page.locator('pre').innerText(), /ok {3}scenarios from the UI: the spring saver/);
await check('test-run');
await page.getByRole('link', { name: 'web version 2' }).click();
await page.getByText(/scenarios on staging: passed/).waitFor();
// A short load test the same way: its figures on the run's page, its result on the version.
await page.getByLabel('Seconds').fill('1');
await page.getByLabel('Most p99 (ms)').fill('2000');
await page.getByRole('button', { name: 'Run the load test' }).click();
await page.getByText('Recorded with web version 2').waitFor();
assert.match(await page.locator('pre').innerText(), /throughput \d+ requests\/s/);
await page.getByRole('link', { name: 'web version 2' }).click();
await page.getByText(/loadtest on staging: passed/).waitFor();
await page.getByRole('link', { name: 'What changed since version 1' }).click();
await page.getByText('added offers/SPRING_SAVER').waitFor();
await check('diff');
await page.goBack();
await page.getByLabel('Compare', { exact: true }).selectOption('1');
await page.getByLabel('with version').selectOption('design');
await page.getByRole('button', { name: 'Show the differences' }).click();
await page.getByText('added rules/spring_saver_home').waitFor();
await page.goBack();

// The design exports as a channel file that names the new offer.
const download = page.waitForEvent('download');
await page.goto(base + '/ui/channels/web');
await page.getByRole('link', { name: 'Export as a channel file' }).click();
const exported = await download;
assert.equal(exported.suggestedFilename(), 'web.yaml');
const exportedPath = await exported.path();
const { readFileSync } = await import('node:fs');
assert.match(readFileSync(exportedPath, 'utf8'), /SPRING_SAVER:/);
await page.goto(base + '/ui/channels/web/versions');

// The simulator plays a visitor against staging's runtime, with the explain output, and
// writes the visit as a scenario file.
await page.goto(base + '/ui/channels/web/simulator');
await page.getByLabel('Audience ID').fill('customer_id=1001');
await page.getByLabel('Real-time parameters').fill('page=home');
await page.getByLabel('Interaction point').fill('hero');
await page.getByLabel('Offers wanted').fill('3');
await page.getByLabel('Then post this event').fill('offer_shown');
await page.getByRole('button', { name: 'Run' }).click();
const offers = page.locator('table.offers').first();
await offers.waitFor();
assert.equal(await offers.locator('tbody tr').count(), 3, 'three offers for the hero');
// Learning explores now and then, so which offers came back varies: remember one.
const shown = await offers.locator('tbody tr').first().locator('td').nth(1).innerText();
assert.match(await page.locator('pre.explain').first().innerText(), /hero/);
assert.match(await page.getByText(/^Segments:/).first().innerText(), /mortgage_holder/);
const scenario = await page.getByLabel(/Scenario file/).inputValue();
assert.match(scenario, /^channel: web\n/);
assert.match(scenario, /get_offers: \{ ip: hero, count: 3 \}\n        expect: \{ codes: \[ [A-Z_]+, [A-Z_]+, [A-Z_]+ \] \}/);
assert.match(scenario, /post_event: \{ event: offer_shown/);
await check('simulator');

// A touchpoint asks for an interaction point the channel lacks: the design team sees it
// listed (from the runtime's next report) and creates it with one click.
await page.getByLabel('Interaction point').fill('promo_strip');
await page.getByLabel('Then post this event').fill('');
await page.getByRole('button', { name: 'Run' }).click();
await page.getByText('UNKNOWN_INTERACTION_POINT').first().waitFor();
const deadline = Date.now() + 15000;
await page.goto(base + '/ui/unknown');
while (await page.getByRole('cell', { name: 'promo_strip' }).count() === 0) {
  assert.ok(Date.now() < deadline, 'promo_strip is listed');
  await page.waitForTimeout(500);
  await page.reload();
}
const row = page.getByRole('row', { name: /promo_strip/ });
await row.getByLabel('in zone').fill('home');
await row.getByRole('button', { name: 'Create' }).click();
await page.getByText('created interaction point promo_strip').waitFor();
assert.match(await page.getByLabel(/^Interaction points/).inputValue(), /^promo_strip$/m);
assert.match(await page.getByLabel(/^Interaction points/).inputValue(), /^hero=Welcome to Acme Bank$/m);
await page.goto(base + '/ui/channels/web/versions');

// Production refuses it (no tests yet). The administrator wrote version 2, so their own
// approval is refused; a reviewer they add approves it instead, offered only what a reviewer
// can do. The administrator then promotes it with a recorded reason.
const v2 = page.locator('section', { has: page.getByRole('heading', { name: /^Version 2/ }) });
await v2.getByLabel('Deploy version 2 to').selectOption('production');
await v2.getByRole('button', { name: 'Deploy version 2' }).click();
await page.locator('.error').getByText(/gate\(s\) failed/).waitFor();
await page.getByRole('button', { name: 'Approve version 2' }).click();
await page.locator('.error').getByText(/an author cannot review it/).waitFor();
await page.getByRole('navigation').getByRole('link', { name: 'Users & tokens' }).click();
await page.getByLabel('User name').fill('rita');
await page.getByLabel(/^Password/).fill('rita-password');
await page.getByLabel('reviewer').check();
await page.getByRole('button', { name: 'Save user' }).click();
await page.getByText('saved user rita').waitFor();
const reviewerContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const rita = await reviewerContext.newPage();
await rita.goto(base + '/ui/login');
await rita.getByLabel('User name').fill('rita');
await rita.getByLabel('Password').fill('rita-password');
await rita.getByRole('button', { name: 'Log in' }).click();
await rita.waitForURL(/\/ui\/channels$/);
assert.equal(await rita.getByRole('link', { name: 'Users & tokens' }).count(), 0, 'no users page');
assert.equal(await rita.getByText('Import a channel file').count(), 0, 'no import');
await rita.goto(base + '/ui/channels/web/versions');
assert.equal(await rita.getByRole('button', { name: /^Deploy version/ }).count(), 0, 'no deploy');
await rita.locator('section', { has: rita.getByRole('heading', { name: /^Version 2/ }) })
  .getByLabel('Review comment').fill('reach checked');
await rita.getByRole('button', { name: 'Approve version 2' }).click();
await rita.getByText('version 2: approved').waitFor();
await rita.goto(base + '/ui/channels/web/edit/offers/GOLD_CARD');
assert.equal(await rita.getByRole('button', { name: 'Save' }).count(), 0, 'no save');
await reviewerContext.close();
await page.goto(base + '/ui/channels/web/versions');
const v2again = page.locator('section', { has: page.getByRole('heading', { name: /^Version 2/ }) });
await v2again.getByLabel('Deploy version 2 to').selectOption('production');
await v2again.getByLabel(/Override failed gates/).fill('browser test: tests run elsewhere');
await v2again.getByRole('button', { name: 'Deploy version 2' }).click();
await page.getByText('version 2 is now active on production').waitFor();

// Roll staging back to version 1.
await page.getByLabel(/Roll back a group/).selectOption('staging');
await page.getByRole('button', { name: 'Roll back' }).click();
await page.getByText('staging rolled back to version 1').waitFor();

// Reports: the contacts the simulator just logged, with charts drawn on the server.
await page.getByRole('navigation').getByRole('link', { name: 'Reports' }).click();
await page.locator('table.performance').getByRole('cell', { name: shown, exact: true }).waitFor();
assert.ok(await page.locator('svg.chart rect.bar').count() >= 3, 'bars in the charts');
assert.ok(await page.getByText(/Segment sizes: web version/).isVisible());
await check('reports');
await page.getByLabel('By').selectOption('day');
await page.getByRole('button', { name: 'Show' }).click();
await page.locator('table.performance').getByRole('cell', { name: /^\d{4}-\d{2}-\d{2}$/ }).first().waitFor();

// Every other page renders.
for (const [link, name] of [['Server groups', 'groups'], ['Unknown names', 'unknown'],
  ['Audit log', 'audit'], ['Users & tokens', 'users']]) {
  await page.getByRole('navigation').getByRole('link', { name: link }).click();
  await check(name);
}
assert.ok(await page.getByText('staging-1').first().isVisible() || true);

// The administrator disables rita, whose logins then end, and issues and revokes a token.
await page.getByRole('navigation').getByRole('link', { name: 'Users & tokens' }).click();
await page.getByRole('button', { name: 'Disable rita' }).click();
await page.getByText('rita is disabled').waitFor();
await page.getByLabel('Channel or group').fill('web');
await page.getByLabel('Label').fill('kiosk');
await page.getByRole('button', { name: 'Issue' }).click();
await page.getByText('A touchpoint token for web').waitFor();
await page.getByRole('link', { name: 'Back to users and tokens' }).click();
const kiosk = page.getByRole('row', { name: /kiosk/ });
await kiosk.getByRole('button', { name: /^Revoke / }).click();
await page.getByText(/^token [0-9a-f]{12} is revoked$/).waitFor();
await page.getByRole('navigation').getByRole('link', { name: 'Audit log' }).click();
assert.ok(await page.getByRole('cell', { name: 'rollback' }).first().isVisible());

// A page of another origin calls the staging runtime's Interact API from the browser once
// the group allows its origin: the preflight (for m_tokenId) passes and the answer is read.
// Pages of origins the group does not allow are refused by the browser.
// kairos up serves staging on the control plane's port + 1, production on + 2.
const portAfter = (n) => { const u = new URL(base); u.port = String(Number(u.port) + n); return u.origin; };
const runtime = portAfter(1);
const allowed = runtime.replace('127.0.0.1', 'localhost');
const session = await (await fetch(base + '/api/login', {
  method: 'POST', headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ user: 'admin', password: process.env.KAIROS_ADMIN_PASSWORD }),
})).json();
const saved = await fetch(base + '/api/groups/staging', {
  method: 'PUT', headers: { 'content-type': 'application/json', authorization: `Bearer ${session.token}` },
  body: JSON.stringify({ cors_origins: [allowed] }),
});
assert.equal(saved.status, 200);
// Tried until the runtime has followed the group (a poll), or twice for a refusal.
const callFrom = async (origin, tries) => {
  await page.goto(origin + '/healthz');
  return page.evaluate(async ([url, tries]) => {
    for (let tried = 0; tried < tries; tried++) {
      try {
        const answer = await fetch(url, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', m_tokenId: 'unused-on-an-open-group' },
          body: JSON.stringify({ sessionId: 'cors-1', commands: [{ action: 'getVersion' }] }),
        });
        return (await answer.json()).responses[0].version;
      } catch (refused) {
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    return 'refused';
  }, [runtime + '/interact/servlet/RestServlet', tries]);
};
assert.match(await callFrom(allowed, 40), /^Kairos .*Interact API/);
assert.equal(await callFrom(portAfter(2), 2), 'refused');

// A phone: the pages fit the width; wide tables and charts scroll inside their box.
await page.setViewportSize({ width: 390, height: 844 });
for (const [path, name] of [['/ui/channels/web', 'channel-phone'],
  ['/ui/channels/web/versions', 'versions-phone'], ['/ui/channels/web/edit/rules/spring_saver_home', 'rule-phone'],
  ['/ui/reports', 'reports-phone'], ['/ui/channels/web/simulator', 'simulator-phone']]) {
  await page.goto(base + path);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `${path} fits a phone (overflows by ${overflow}px)`);
  await check(name);
}

await browser.close();
console.log('browser tests passed');
