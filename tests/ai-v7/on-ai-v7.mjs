// Runs a suite file of another folder with the packages of this one (ai@7): registers resolve-here.mjs, checks that
// a file elsewhere now gets ai@7 when it imports `ai` (so the suite cannot pass on ai@6 by mistake), then imports the
// suite file, whose tests node:test runs as its own.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { register } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';

register('./resolve-here.mjs', import.meta.url);

export async function runOnAiV7(suiteFile) {
  test('a file outside this folder that imports ai gets ai@7', async () => {
    // A probe in a temporary folder, which has no node_modules: it resolves `ai` only through the hook.
    const dir = await mkdtemp(join(tmpdir(), 'ai-v7-probe-'));
    try {
      const probe = join(dir, 'probe.mjs');
      await writeFile(probe, "export { MockLanguageModelV4 } from 'ai/test';\nexport { streamText } from 'ai';\n");
      const { MockLanguageModelV4, streamText } = await import(pathToFileURL(probe).href);
      assert.equal(typeof MockLanguageModelV4, 'function'); // the V4 model specification arrived with ai@7
      assert.equal(typeof streamText, 'function');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const pkg = JSON.parse(await readFile(new URL('./node_modules/ai/package.json', import.meta.url), 'utf8'));
    assert.match(pkg.version, /^7\./);
  });
  await import(suiteFile);
}
