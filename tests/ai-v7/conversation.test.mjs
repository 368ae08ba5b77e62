// tests/ai-transport/conversation.test.mjs (turns, regenerate, edit, reasoning parts, client tools), unchanged, on ai@7.
import { runOnAiV7 } from './on-ai-v7.mjs';

await runOnAiV7(new URL('../ai-transport/conversation.test.mjs', import.meta.url).href);
