// A real headless browser for the tests of the pages Gatehouse serves (the collector's console, the
// evidence pack's page): Debian's Chromium (installed by ensure-packages.ts), driven by playwright-core,
// which never downloads a browser of its own. Screenshots are test artifacts under .cache/screenshots.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { runningAsRoot } from './os-user.ts';

export const CHROMIUM = '/usr/bin/chromium';
export const SCREENSHOT_DIR = join(import.meta.dirname, '..', '..', '.cache', 'screenshots');

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Chromium refuses its sandbox as root (CI runs as root); the pages it opens are our own, on loopback.
    args: runningAsRoot() ? ['--no-sandbox'] : [],
  });
}

/** Saves a full-page screenshot as .cache/screenshots/NAME.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name.replace(/[^\w.-]+/g, '-')}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
