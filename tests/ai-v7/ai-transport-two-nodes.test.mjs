// tests/ai-transport/ai-transport-two-nodes.test.mjs (@ably/ai-transport on two nodes on Redis), unchanged, on ai@7.
import { runOnAiV7 } from './on-ai-v7.mjs';

await runOnAiV7(new URL('../ai-transport/ai-transport-two-nodes.test.mjs', import.meta.url).href);
