// tests/ai-transport/ai-transport.test.mjs (@ably/ai-transport on one node), unchanged, on ai@7.
import { runOnAiV7 } from './on-ai-v7.mjs';

await runOnAiV7(new URL('../ai-transport/ai-transport.test.mjs', import.meta.url).href);
