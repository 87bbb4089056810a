// The dashboard in a real headless chromium (Debian's, driven by playwright-core): while pgbench runs its charts draw data.
import { expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { Client } from "pg";
import { chromium, type Browser } from "playwright-core";
import { initPgbench, runPgbench, usePostgres, waitFor } from "../harness/fixtures.ts";
import { freePort, startPgbun } from "../harness/pgbun.ts";

setDefaultTimeout(90_000);

const CHROMIUM = process.env.PGBUN_CHROMIUM ?? "/usr/bin/chromium";
const HAVE_CHROMIUM = existsSync(CHROMIUM);
/** The screenshot is kept here (tmp/ of the repository is ignored by git). */
const ARTIFACTS = resolve(import.meta.dir, "..", "..", "tmp", "artifacts");

if (!HAVE_CHROMIUM) {
  // outside CI a machine without chromium skips; CI installs it (.ci/run), so there its absence fails below
  console.warn(`dashboard test: ${CHROMIUM} not found${process.env.CI ? "" : "; skipped (apt-get install -y chromium)"}`);
}

const pg = usePostgres((db) => initPgbench(db));

// the page's globals, as the functions given to page.evaluate / waitForFunction see them (the project has no DOM lib)
declare const window: any;
declare const document: any;

test.skipIf(!HAVE_CHROMIUM && !process.env.CI)("the dashboard draws live charts from the pooler while pgbench runs", async () => {
  expect(HAVE_CHROMIUM).toBe(true); // in CI chromium must be there
  const port = await freePort();
  const pb = await startPgbun({ pg, config: { pgbun: { log_level: "info", pool_mode: "transaction", default_pool_size: 4, stats_listen_port: port } } });
  const base = `http://127.0.0.1:${port}`;
  let browser: Browser | null = null;
  try {
    await waitFor("the stats listener", async () => (await fetch(`${base}/healthz`).catch(() => null))?.status === 200, 15_000, 100);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(String(e)));

    // a client names a database with markup in it: the dashboard shows the name (and the error quoting it) as text
    const HOSTILE = '<img src=x onerror="window.pwned=1">';
    const hostile = new Client({ host: pb.host, port: pb.port, user: pg.superuser, password: pg.password, database: HOSTILE });
    hostile.on("error", () => undefined);
    expect(await hostile.connect().then(() => "connected", (e: { code?: string }) => e.code)).toBe("3D000");

    // before any load: the page comes up, the charts are empty
    // a 20 s window: the few seconds of the run spread over the chart's width
    await page.goto(`${base}/?interval=500&window=20`);
    await page.waitForFunction(() => window.pgbunDashboard?.polls >= 2, undefined, { timeout: 15_000 });
    const idle = await page.evaluate(() => window.pgbunDashboard.last.throughput[0] as number);
    expect(idle).toBe(0);

    const bench = runPgbench(pg, pb, ["-c", "6", "-j", "2", "-T", "10", "-S"]);
    try {
      // a few polls into the run: throughput and clients are on the charts
      await page.waitForFunction(
        () => {
          const d = window.pgbunDashboard;
          return d && d.last && d.last.throughput[0] > 0 && d.last.clients[0] + d.last.clients[1] >= 6 && d.points >= 10;
        },
        undefined,
        { timeout: 20_000 },
      );
      await Bun.sleep(1_500);
      // per chart, the saturated pixels: the series' colors (background, grid and labels are grays)
      const pixels = await page.evaluate((ids) => {
        const count = (id: string) => {
          const canvas = document.getElementById(id);
          const data: Uint8ClampedArray = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
          let pixels = 0;
          const columns = new Set<number>();
          for (let i = 0; i < data.length; i += 4) {
            const r = data[i]!, g = data[i + 1]!, b = data[i + 2]!;
            if (data[i + 3]! > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 60) {
              pixels++;
              columns.add((i / 4) % canvas.width);
            }
          }
          return { pixels, columns: columns.size, width: canvas.width };
        };
        return Object.fromEntries(ids.map((id) => [id, count(id)]));
      }, ["chart-throughput", "chart-clients", "chart-servers", "chart-latency", "chart-bytes"]);
      // a line over the polls of several seconds: hundreds of pixels, across a good part of the chart's width
      for (const [chart, n] of Object.entries(pixels)) {
        expect({ chart, ...n, drew: n.pixels > 300 && n.columns > n.width / 5 }).toEqual({ chart, ...n, drew: true });
      }
      const poolsText = await page.locator("#pools").innerText();
      expect(poolsText).toContain("app");
      expect(poolsText).toContain(HOSTILE);
      expect(await page.evaluate(() => [document.querySelectorAll("#pools img").length, window.pwned ?? null])).toEqual([0, null]);
      expect(await page.locator("#ready").innerText()).toBe("ready");
      mkdirSync(ARTIFACTS, { recursive: true });
      const shot = join(ARTIFACTS, "dashboard.png");
      await page.screenshot({ path: shot, fullPage: true });
      expect(statSync(shot).size).toBeGreaterThan(10_000);
      console.log(`dashboard screenshot: ${shot}`);
    } finally {
      const r = await bench;
      if (r.code !== 0) throw new Error(`pgbench failed:\n${r.output}`);
    }
    // a page opened after the run starts with the pooler's samples of the last minutes: the run is on its charts
    const later = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
    later.on("pageerror", (e) => pageErrors.push(String(e)));
    await later.goto(`${base}/?interval=500`);
    await later.waitForFunction(() => window.pgbunDashboard?.polls >= 1, undefined, { timeout: 15_000 });
    const past = await later.evaluate(() => ({ points: window.pgbunDashboard.points, peakTps: window.pgbunDashboard.peakTps }));
    expect(past.points).toBeGreaterThanOrEqual(4); // 2 s samples over a 10 s run
    expect(past.peakTps).toBeGreaterThan(0);
    expect(pageErrors).toEqual([]);
  } finally {
    await browser?.close();
    await pb.stop();
  }
});
