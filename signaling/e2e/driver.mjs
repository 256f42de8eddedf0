// driver.mjs drives headless Chromium through a voice call: one page per
// user, all in one room, then prints each page's WebRTC stats as JSON.
//
//   node driver.mjs BASE_URL ROOM SECONDS USER...
//
// It must run in a network namespace that has only lo (see
// TestBrowserVoice): Chromium offers candidates from every interface.
import { chromium } from 'playwright-core';

const [base, room, seconds, ...users] = process.argv.slice(2);
if (!base || !room || !seconds || users.length < 2) {
  console.error('usage: node driver.mjs BASE_URL ROOM SECONDS USER USER...');
  process.exit(2);
}
const watchdog = setTimeout(() => { console.error('driver: timed out'); process.exit(3); }, (Number(seconds) + 60) * 1000);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  timeout: 30000,
  args: [
    '--allow-loopback-in-peer-connection',
    '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    '--autoplay-policy=no-user-gesture-required',
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
    '--disable-features=WebRtcHideLocalIpsWithMdns',
  ],
});
try {
  const context = await browser.newContext();
  await context.grantPermissions(['microphone']);
  const pages = [];
  for (const user of users) {
    const page = await context.newPage();
    page.setDefaultTimeout(15000);
    page.on('console', (m) => console.error(`[${user}] ${m.text()}`));
    await page.goto(`${base}/e2e/voice.html?user=${encodeURIComponent(user)}&room=${encodeURIComponent(room)}`);
    pages.push({ user, page });
  }
  await new Promise((r) => setTimeout(r, Number(seconds) * 1000));
  const result = {};
  for (const { user, page } of pages) {
    result[user] = await page.evaluate(() => window.voiceStats());
  }
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
  clearTimeout(watchdog);
}
