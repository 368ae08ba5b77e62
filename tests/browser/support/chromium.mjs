// Debian's Chromium (/usr/bin/chromium, or $CHROMIUM_PATH) for the browser tests, driven by playwright-core: headless,
// with the flags a root CI machine needs. Without it a test skips locally and fails in CI (.ci/run installs it).

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** True when Chromium is installed; otherwise skips test `t` (locally) or fails it (CI). */
export function haveChromium(t) {
  if (existsSync(CHROMIUM)) return true;
  const why = `Chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`;
  if (process.env.CI) assert.fail(`${why}. In CI this is a failure, not a skip (.ci/run installs it).`);
  t.skip(why);
  return false;
}

/** Headless Chromium, as every browser test launches it. */
export function launchChromium() {
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
}
