// Open a report page in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core) and
// print what rendered as one JSON line: each panel's plot size, console errors and page errors.
// Usage: node tests/browser/render.mjs /path/to/page.html [chromium-path]
import { chromium } from "playwright-core";
import { pathToFileURL } from "node:url";

const [page_path, executable = "/usr/bin/chromium"] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: executable,
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  const page = await browser.newPage();
  const console_errors = [];
  const page_errors = [];
  const requests = [];
  page.on("console", (m) => { if (m.type() === "error") console_errors.push(m.text()); });
  page.on("pageerror", (e) => page_errors.push(String(e)));
  page.on("request", (r) => { if (!r.url().startsWith("file:")) requests.push(r.url()); });
  await page.goto(pathToFileURL(page_path).href, { waitUntil: "load" });
  const panels = await page.$$eval("section.panel", (sections) =>
    sections.map((s) => {
      const svg = s.querySelector("svg");
      const box = svg ? svg.getBoundingClientRect() : { width: 0, height: 0 };
      return { id: s.id, width: Math.round(box.width), height: Math.round(box.height),
               shapes: svg ? svg.querySelectorAll("path, rect, text, use").length : 0 };
    }));
  const title = await page.title();
  console.log(JSON.stringify({ title, panels, console_errors, page_errors, requests }));
} finally {
  await browser.close();
}
