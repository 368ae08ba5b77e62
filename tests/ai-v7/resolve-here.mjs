// Module resolution hooks (node:module register): the packages the AI suites import by name resolve from this folder,
// whose `ai` is 7, instead of from the suite's own folder, whose `ai` is 6. So the suites' files run unchanged on ai@7.
// Only these names are redirected, and only from files outside node_modules: the packages themselves then resolve
// their own dependencies (ai-transport's `ai` and `ably` peers) from here too, and everything else (`ws`, the
// suites' helpers) resolves as before.

const REDIRECTED = ['ai', '@ably/ai-transport', 'ably'];
const HERE = new URL('./package.json', import.meta.url).href;

const isRedirected = (specifier) =>
  REDIRECTED.some((name) => specifier === name || specifier.startsWith(`${name}/`));

export async function resolve(specifier, context, nextResolve) {
  const parent = context.parentURL ?? '';
  if (isRedirected(specifier) && parent.startsWith('file:') && !parent.includes('/node_modules/')) {
    return nextResolve(specifier, { ...context, parentURL: HERE });
  }
  return nextResolve(specifier, context);
}
