// Drives Aviary's approval gate in headless Chromium, as a person clicking the Slack button would:
// opens the signed approve link, checks the confirmation page, types a name, presses the button,
// follows the release to promoted on its dashboard page and screenshots it; a tampered link must
// show the error page (HTTP 403) and change nothing.
//
// Input (environment):
//   AVIARY_APPROVE_LINK   the approve link from the Slack notice
//   AVIARY_TAMPERED_LINK  a link whose token was altered
//   AVIARY_RELEASE_PAGE   the release's dashboard page
//   AVIARY_RELEASE_ID     the release's id
//   AVIARY_SCREENSHOT     where to write the release page's screenshot (PNG)
//   CHROMIUM              the browser (default /usr/bin/chromium)
//   AVIARY_DECIDER        the name typed on the confirmation page (default "Browser Tester")
// Output: a JSON summary on stdout; on a failed check, a message on stderr and exit 1.
import { chromium } from 'playwright-core';

function need(name) {
  const v = process.env[name];
  if (!v) {
    fail(`set ${name}`);
  }
  return v;
}

function fail(msg) {
  process.stderr.write(`gate.mjs: ${msg}\n`);
  process.exit(1);
}

class CheckFailed extends Error {}

function check(ok, msg) {
  if (!ok) {
    throw new CheckFailed(msg);
  }
}

const approveLink = need('AVIARY_APPROVE_LINK');
const tamperedLink = need('AVIARY_TAMPERED_LINK');
const releasePage = need('AVIARY_RELEASE_PAGE');
const releaseID = need('AVIARY_RELEASE_ID');
const screenshot = need('AVIARY_SCREENSHOT');
const decider = process.env.AVIARY_DECIDER || 'Browser Tester';

const summary = { release: releaseID, steps: [] };
const began = Date.now();
function step(name, data = {}) {
  summary.steps.push({ step: name, ms: Date.now() - began, ...data });
}

// text is the page's visible text, whitespace squeezed.
async function text(page) {
  return (await page.locator('body').innerText()).replace(/\s+/g, ' ');
}

// openTampered opens the tampered link and checks the error page.
async function openTampered(page, when) {
  const resp = await page.goto(tamperedLink, { waitUntil: 'domcontentloaded' });
  check(resp !== null, `tampered link (${when}): no response`);
  const body = await text(page);
  check(resp.status() === 403, `tampered link (${when}): HTTP ${resp.status()}, want 403; page: ${body.slice(0, 400)}`);
  check(body.includes('This link is not valid'), `tampered link (${when}): no "This link is not valid" on the page: ${body.slice(0, 400)}`);
  check(body.includes('Nothing was changed'), `tampered link (${when}): no "Nothing was changed" on the page: ${body.slice(0, 400)}`);
  check((await page.locator('#decide').count()) === 0, `tampered link (${when}): the error page has a decide button`);
  step(`tampered link ${when}`, { status: resp.status(), heading: (await page.locator('h1').first().innerText()).trim() });
}

// phaseOf reads the release page's phase line.
async function phaseOf(page) {
  return (await page.locator('.phase-line .phase').first().innerText()).trim();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
let code = 0;
try {
  summary.browser = browser.version();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  summary.userAgent = await page.evaluate(() => navigator.userAgent);

  // While the release waits: a tampered link decides nothing, and the release still waits.
  await openTampered(page, 'while waiting');
  await page.goto(releasePage, { waitUntil: 'domcontentloaded' });
  const waiting = await phaseOf(page);
  check(waiting.startsWith('awaiting-approval'), `after the tampered link, the release page shows phase "${waiting}", want awaiting-approval`);
  step('release still waits', { phase: waiting });

  // The approve link from Slack: a confirmation page, which decides nothing by itself.
  let resp = await page.goto(approveLink, { waitUntil: 'domcontentloaded' });
  check(resp !== null && resp.status() === 200, `approve link: HTTP ${resp && resp.status()}, want 200: ${(await text(page)).slice(0, 400)}`);
  const heading = (await page.locator('h1').first().innerText()).trim();
  check(heading.includes('Approve release') && heading.includes(releaseID), `confirmation page heading "${heading}", want "Approve release ${releaseID}?"`);
  const rows = await page.locator('table.functions tbody tr').count();
  check(rows > 0, 'confirmation page: no functions table');
  check(await page.locator('#decide').isVisible(), 'confirmation page: no #decide button');
  step('confirmation page', { heading, functions: rows });

  await page.fill('#name', decider);
  await page.click('#decide');
  await page.getByRole('heading', { name: 'Approved' }).waitFor({ timeout: 15000 }).catch(async () => {
    throw new CheckFailed(`after pressing the button: no "Approved" heading; page: ${(await text(page)).slice(0, 400)}`);
  });
  const decided = await text(page);
  check(decided.includes(decider), `result page does not name "${decider}": ${decided.slice(0, 400)}`);
  step('approved', { result: (await page.locator('p.verdict').first().innerText()).trim() });

  // The release page: the deploy acts on the decision; the page refreshes itself while the
  // release moves, and is reloaded here until it shows promoted.
  const deadline = Date.now() + 60000;
  let phase = '';
  for (;;) {
    resp = await page.goto(releasePage, { waitUntil: 'domcontentloaded' });
    check(resp !== null && resp.status() === 200, `release page: HTTP ${resp && resp.status()}`);
    phase = await phaseOf(page);
    if (phase === 'promoted') {
      break;
    }
    check(Date.now() < deadline, `the release page still shows "${phase}" after 60s, want promoted`);
    await page.waitForTimeout(500);
  }
  const rel = await text(page);
  check(rel.includes(`by ${decider} via link`), `release page: the gate's decision (approve by ${decider} via link) is not shown: ${rel.slice(0, 600)}`);
  await page.screenshot({ path: screenshot, fullPage: true });
  step('release promoted', { phase, screenshot });

  // After the decision: the tampered link still shows the error page.
  await openTampered(page, 'after the decision');
  summary.ok = true;
} catch (e) {
  summary.ok = false;
  summary.error = e instanceof CheckFailed ? e.message : String(e && e.stack ? e.stack : e);
  process.stderr.write(`gate.mjs: ${summary.error}\n`);
  code = 1;
} finally {
  await browser.close();
}
summary.ms = Date.now() - began;
process.stdout.write(JSON.stringify(summary) + '\n');
process.exit(code);
