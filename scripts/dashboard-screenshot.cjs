// A Superset dashboard as a PNG, in headless Chromium (for scripts/bench-dashboard.py).
//
//   NODE_PATH=<dir>/node_modules node scripts/dashboard-screenshot.cjs \
//       <superset base URL> <dashboard path> <out.png> <chromium> <new empty user-data dir>
//
// Logs in as admin/admin through Superset's login form, opens the dashboard,
// waits until every chart has rendered (no spinner left, each chart holding
// a canvas, an svg or a table), and saves a 1400x950 screenshot.
const { chromium } = require("playwright-core");

const [base, path, out, executablePath, userDataDir] = process.argv.slice(2);

(async () => {
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
    viewport: { width: 1400, height: 950 },
    deviceScaleFactor: 1,
  });
  try {
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(120000);
    await page.goto(base + "/login/");
    await page.fill("#username, input[name=username]", "admin");
    await page.fill("#password, input[name=password]", "admin");
    await Promise.all([
      page.waitForURL((u) => !u.pathname.startsWith("/login"), { timeout: 60000 }),
      page.press("#password, input[name=password]", "Enter"),
    ]);
    await page.goto(base + path, { waitUntil: "networkidle" });
    // Every chart on the dashboard rendered.
    await page.waitForFunction(() => {
      const holders = [...document.querySelectorAll("[data-test='chart-grid-component']")];
      if (holders.length === 0) return false;
      if (document.querySelector("[data-test='loading-indicator'], .loading")) return false;
      return holders.every((h) => h.querySelector("canvas, svg, table, .header-line"));
    }, null, { timeout: 180000, polling: 500 });
    await page.waitForLoadState("networkidle");
    await page.waitForTimeout(2000); // chart animations
    const charts = await page.$$eval("[data-test='chart-grid-component']", (hs) => hs.length);
    await page.screenshot({ path: out });
    console.log(`saved ${out} (${charts} charts rendered)`);
  } catch (e) {
    const page = context.pages()[0];
    const failed = process.env.SCREENSHOT_FAILED || "/tmp/dashboard-screenshot-failed.png";
    if (page) await page.screenshot({ path: failed }).then(() => console.error(`page as it was: ${failed}`), () => {});
    throw e;
  } finally {
    await context.close();
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
