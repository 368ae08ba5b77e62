// The Tokenwire demo page: the guide's message-per-token subscriber in a browser, plus hydration.
//
// The agent (in the server) publishes, per answer: `prompt` (the question), `start`, one `token` per model token and
// `stop`, all with extras.headers.responseId (and `response-complete` with the full text if a publish failed).
// On load the page attaches first, then asks the server for every response still in progress up to the attach point
// (GET /channels/{id}/responses?state=in-progress&from_serial=<attachSerial>), so a reload mid-answer shows the whole
// answer and continues live with no gap; live messages that arrive meanwhile are buffered, and any message is applied
// once (by id).

const statusEl = document.getElementById('status');
const listEl = document.getElementById('responses');
const form = document.getElementById('ask');
const promptInput = document.getElementById('prompt');

function setStatus(state, text) {
  statusEl.dataset.state = state;
  statusEl.textContent = text;
}

/** responseId -> { el, promptEl, textEl, metaEl, text, tokens, hydratedTokens, state } */
const responses = new Map();
const appliedIds = new Set();

function responseFor(responseId) {
  let r = responses.get(responseId);
  if (r) return r;
  const el = document.createElement('article');
  el.className = 'response';
  el.dataset.responseId = responseId;
  el.dataset.state = 'streaming';
  el.innerHTML = '<div class="prompt"></div><div class="text"></div><div class="meta"></div>';
  listEl.append(el);
  r = {
    el,
    promptEl: el.querySelector('.prompt'),
    textEl: el.querySelector('.text'),
    metaEl: el.querySelector('.meta'),
    text: '',
    tokens: 0,
    hydratedTokens: 0,
    state: 'streaming',
  };
  responses.set(responseId, r);
  return r;
}

function describe(r) {
  const caughtUp = r.hydratedTokens > 0 ? `, ${r.hydratedTokens} caught up after (re)load` : '';
  const state = { streaming: 'streaming', done: 'done', replaced: 'done (replaced by the full text)' }[r.state];
  r.metaEl.textContent = `${r.el.dataset.responseId}: ${r.tokens} tokens${caughtUp}, ${state}`;
}

/** Applies one message (live, or a plain object from the in-progress endpoint); `hydrating` marks catch-up. */
function apply(message, hydrating = false) {
  if (message.id) {
    if (appliedIds.has(message.id)) return;
    appliedIds.add(message.id);
  }
  const responseId = message.extras?.headers?.responseId;
  if (!responseId) return;
  const r = responseFor(responseId);
  switch (message.name) {
    case 'prompt':
      r.promptEl.textContent = message.data;
      break;
    case 'token':
      if (r.state === 'replaced') return; // the full text already arrived
      r.text += message.data;
      r.tokens++;
      if (hydrating) r.hydratedTokens++;
      r.textEl.textContent = r.text;
      break;
    case 'stop':
      if (r.state === 'streaming') r.state = 'done';
      break;
    case 'response-complete':
      r.text = message.data;
      r.state = 'replaced';
      r.textEl.textContent = r.text;
      break;
    default:
      return; // 'start' and names this page does not know
  }
  r.el.dataset.state = r.state === 'streaming' ? 'streaming' : 'done';
  describe(r);
  if (!hydrating && message.name !== 'token') r.el.scrollIntoView({ block: 'nearest' });
}

async function main() {
  if (typeof Ably === 'undefined') {
    throw new Error(
      'the ably browser bundle (vendor/ably.min.js) is missing: install Node.js 20+ and rebuild the server ' +
        '(its build runs npm ci in src/Tokenwire.Demo/web)',
    );
  }
  const config = await (await fetch('demo/config')).json();
  document.getElementById('channel').textContent = config.channel;
  document.getElementById('model').textContent = config.model === 'simulated' ? 'simulated model, offline' : 'OpenAI-compatible model';

  const secure = location.protocol === 'https:';
  const port = Number(location.port) || (secure ? 443 : 80);
  // The token URL returns a subscribe-only token for the demo channel: this page can watch, never publish.
  const realtime = new Ably.Realtime({
    authUrl: new URL('demo/token', location.href).href,
    endpoint: location.hostname,
    port,
    tlsPort: port,
    tls: secure,
    // Probe this server, never the internet, when a connection attempt fails (the page must work offline).
    disableConnectivityCheck: true,
    wsConnectivityCheckUrl: `${secure ? 'wss' : 'ws'}://${location.host}/`,
  });
  realtime.connection.on((change) => {
    if (change.current === 'connected') setStatus('live', `Live on ${config.channel}`);
    else setStatus(change.current === 'failed' ? 'error' : 'connecting', `Connection ${change.current}${change.reason ? `: ${change.reason.message}` : ''}`);
  });

  const channel = realtime.channels.get(config.channel);
  let live = false;
  const buffered = [];
  await channel.subscribe((message) => (live ? apply(message) : buffered.push(message)));

  // Catch up on the answers in progress at the attach point (Tokenwire's extension; 404 when the server has it off).
  const path = `/channels/${encodeURIComponent(config.channel)}/responses`;
  const page = await realtime.request('get', path, 3, { state: 'in-progress', from_serial: channel.properties.attachSerial });
  if (page.success) {
    for (const item of page.items) apply(item, true);
  } else if (page.statusCode !== 404) {
    setStatus('error', `Could not catch up: ${page.errorMessage}`);
  }
  for (const message of buffered) apply(message);
  live = true;

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const prompt = promptInput.value.trim();
    if (!prompt) return;
    const res = await fetch('demo/prompt', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt }),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      setStatus('error', `Prompt refused: ${body.error?.message ?? res.statusText}`);
      return;
    }
    promptInput.value = '';
  });

  // For the browser test and for poking around in the console.
  window.tokenwireDemo = { realtime, channel, responses, ready: true };
  document.body.dataset.ready = 'true';
}

main().catch((error) => {
  console.error(error);
  setStatus('error', `Demo failed to start: ${error.message}`);
});
