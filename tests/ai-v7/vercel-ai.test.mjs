// tests/interop/vercel-ai.test.mjs (the guide's message-per-token publisher on streamText), unchanged, on ai@7.
import { runOnAiV7 } from './on-ai-v7.mjs';

await runOnAiV7(new URL('../interop/vercel-ai.test.mjs', import.meta.url).href);
