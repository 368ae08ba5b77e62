// The Tokenwire demo page: the guide's message-per-token subscriber in a browser, plus hydration.
//
// The agent (in the server) publishes, per answer: `prompt` (the question), `start`, one `token` per model token and
// `stop`, all with extras.headers.responseId (and `response-complete` with the full text if a publish failed).
// On load the page attaches first, then catches up on the conversation up to the attach point:
//   - the answers still streaming, whole, from GET /channels/{id}/responses?state=in-progress&from_serial=<attachSerial>;
//   - the finished answers from the channel's persisted history, paged back with untilAttach.
// Live messages that arrive meanwhile are buffered, and any message is applied once (by id), so a reload shows the
// conversation and continues live with no gap.
//
// With ?pattern=response (the switch in the header) the page follows the response channel instead, where the agent
// publishes one `response` message per answer and appends each token to it (message-per-response): a message.create
// starts the answer, each message.append adds its data, a message.update (a reload's history, or the first sight of an
// answer in progress after attach) gives the whole text so far, and the status header `complete` / `cancelled` ends
// it. Deliveries are applied by version serial: one at or below the version already applied is dropped. Each answer
// there can be rated 👍 / 👎: an annotation of type feedback:distinct.v1 on the answer's message, published (or, clicked
// again, deleted) under the page's clientId; every tab shows the counts from the message's summary (message.summary
// deliveries live, the summary that history returns with the message after a reload).

const statusEl = document.getElementById('status');
const listEl = document.getElementById('responses');
const form = document.getElementById('ask');
const promptInput = document.getElementById('prompt');
const pattern = new URLSearchParams(location.search).get('pattern') === 'response' ? 'response' : 'token';
const FEEDBACK = 'feedback:distinct.v1';

/** The page's clientId (annotations count clients), kept across reloads so a reload is the same voter. */
function pageClientId() {
  let id = localStorage.getItem('tokenwire-demo-client');
  if (!id) {
    id = `viewer-${crypto.randomUUID().slice(0, 8)}`;
    localStorage.setItem('tokenwire-demo-client', id);
  }
  return id;
}
const clientId = pageClientId();
let channel; // set in main()

// How far back a reload looks: at most this many messages of history (a 150-token answer is about 155 messages).
const HISTORY_PAGE = 1000;
const HISTORY_MAX_MESSAGES = 5000;

/** The connection indicator: "connecting…", "connected", "reconnecting…", plus "caught up N tokens" after a (re)load. */
const status = { state: 'connecting', text: 'connecting…', caughtUp: null, problem: null };
function renderStatus() {
  const parts = [status.text];
  if (status.caughtUp !== null && status.state === 'live') {
    const answers = `caught up ${status.caughtUp} answer${status.caughtUp === 1 ? '' : 's'}`;
    parts.push(pattern === 'response' ? answers : `caught up ${status.caughtUp} tokens`);
  }
  if (status.problem) parts.push(status.problem);
  statusEl.dataset.state = status.problem ? 'error' : status.state;
  statusEl.textContent = parts.join(' · ');
}
function setConnection(state, text) {
  status.state = state;
  status.text = text;
  renderStatus();
}
function setProblem(text) {
  status.problem = text;
  renderStatus();
}

/** responseId -> { el, promptEl, textEl, metaEl, text, tokens, hydratedTokens, state, serial, votes } */
const responses = new Map();
/** Message-per-response: the answer's message serial -> its response (summaries name the serial only). */
const bySerial = new Map();
const appliedIds = new Set();

function responseFor(responseId) {
  let r = responses.get(responseId);
  if (r) return r;
  const el = document.createElement('article');
  el.className = 'response';
  el.dataset.responseId = responseId;
  el.dataset.state = 'streaming';
  el.innerHTML = '<div class="prompt"></div><div class="text"></div><div class="meta"></div>';
  if (pattern === 'response') {
    el.insertAdjacentHTML('beforeend', '<div class="feedback" hidden>' +
      '<button type="button" data-vote="up" aria-pressed="false">👍 <span>0</span></button>' +
      '<button type="button" data-vote="down" aria-pressed="false">👎 <span>0</span></button></div>');
  }
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
    version: null, // message-per-response: the version serial applied last
    serial: null, // message-per-response: the answer's message
    votes: { up: 0, down: 0, mine: new Set() },
  };
  for (const button of el.querySelectorAll('.feedback button')) button.addEventListener('click', () => vote(r, button.dataset.vote));
  responses.set(responseId, r);
  return r;
}

/** Shows an answer's feedback from its message's annotation summary ({summary: {type: {name: {total, clientIds}}}}). */
function showFeedback(r, summary) {
  const kind = summary?.[FEEDBACK] ?? {};
  r.votes = { up: 0, down: 0, mine: new Set() };
  for (const name of ['up', 'down']) {
    r.votes[name] = kind[name]?.total ?? 0;
    if (kind[name]?.clientIds?.includes(clientId)) r.votes.mine.add(name);
    const button = r.el.querySelector(`.feedback button[data-vote="${name}"]`);
    button.querySelector('span').textContent = String(r.votes[name]);
    button.setAttribute('aria-pressed', String(r.votes.mine.has(name)));
  }
}

/** Rates an answer: publishes the vote, or withdraws it when this page's clientId already gave it. */
async function vote(r, name) {
  if (!r.serial) return;
  const annotation = { type: FEEDBACK, name };
  try {
    if (r.votes.mine.has(name)) await channel.annotations.delete(r.serial, annotation);
    else await channel.annotations.publish(r.serial, annotation);
    setProblem(null);
  } catch (error) {
    setProblem(`feedback refused: ${error.message}`);
  }
}

function describe(r) {
  const caughtUp = r.hydratedTokens > 0 ? `, ${r.hydratedTokens} caught up after (re)load` : '';
  const state = { streaming: 'streaming', done: 'done', replaced: 'done (replaced by the full text)' }[r.state];
  if (pattern === 'response') {
    r.metaEl.textContent = `${r.text.length} characters, ${r.tokens} appends received, ${state}`;
    return;
  }
  r.metaEl.textContent = `${r.tokens} tokens${caughtUp}, ${state}`;
}

function responseIdOf(message) {
  return message.extras?.headers?.responseId;
}

/** Message-per-response: applies a create, append or update of an answer's one message, by version serial. */
function applyResponse(r, message, hydrating) {
  const version = message.version?.serial ?? message.serial;
  if (r.version && version && version <= r.version) return false; // already applied (history or rewind overlapping live)
  if (version) r.version = version;
  if (!r.serial && message.serial) {
    r.serial = message.serial;
    bySerial.set(message.serial, r);
    r.el.querySelector('.feedback').hidden = false;
  }
  if (message.annotations?.summary) showFeedback(r, message.annotations.summary); // history returns it with the message
  if (message.action === 'message.append') {
    if (message.data) {
      r.text += message.data;
      r.tokens++;
      if (hydrating) r.hydratedTokens++;
    }
  } else {
    r.text = message.data ?? ''; // the whole text so far
    if (hydrating) r.hydratedTokens = 1; // counts answers caught up, not tokens
  }
  const state = message.extras?.headers?.status;
  if (state === 'complete' || state === 'cancelled') r.state = 'done';
  r.textEl.textContent = r.text;
  return true;
}

/** Applies one message (live, history, or a plain object from the in-progress endpoint); `hydrating` marks catch-up. */
function apply(message, hydrating = false) {
  if (message.action === 'message.summary') {
    const r = bySerial.get(message.serial);
    if (r) showFeedback(r, message.annotations?.summary);
    return;
  }
  if (message.name === 'response') {
    const responseId = responseIdOf(message);
    if (!responseId) return;
    const r = responseFor(responseId);
    if (!applyResponse(r, message, hydrating)) return;
    r.el.dataset.state = r.state === 'streaming' ? 'streaming' : 'done';
    describe(r);
    return;
  }
  if (message.id) {
    if (appliedIds.has(message.id)) return;
    appliedIds.add(message.id);
  }
  const responseId = responseIdOf(message);
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

/** The channel's history up to the attach point, oldest first, at most HISTORY_MAX_MESSAGES. */
async function historyUntilAttach(channel) {
  const newestFirst = [];
  let page = await channel.history({ untilAttach: true, limit: HISTORY_PAGE });
  while (page) {
    newestFirst.push(...page.items);
    if (newestFirst.length >= HISTORY_MAX_MESSAGES || !page.hasNext()) break;
    page = await page.next();
  }
  return newestFirst.reverse();
}

/** Catches up on the conversation at the attach point; returns how many tokens it applied. */
async function catchUp(realtime, channel) {
  // Answers still streaming, whole (Tokenwire's extension; 404 when the server has it off: history covers them then).
  // Message-per-response needs none: history holds each answer's one message, whole, at its latest version.
  const inProgress = [];
  if (pattern === 'token') {
    const path = `/channels/${encodeURIComponent(channel.name)}/responses`;
    const page = await realtime.request('get', path, 3, { state: 'in-progress', from_serial: channel.properties.attachSerial });
    if (page.success) inProgress.push(...page.items);
    else if (page.statusCode !== 404) setProblem(`could not catch up on answers in progress: ${page.errorMessage}`);
  }
  const streaming = new Set(inProgress.map(responseIdOf));

  // Finished answers, oldest first: only those whose beginning (prompt, start, or the answer's message) history reaches.
  const older = await historyUntilAttach(channel);
  const whole = new Set(older.filter((m) => m.name === 'prompt' || m.name === 'start' || m.name === 'response').map(responseIdOf));
  let before = 0;
  for (const r of responses.values()) before += r.hydratedTokens;
  for (const message of older) {
    const id = responseIdOf(message);
    if (id && whole.has(id) && !streaming.has(id)) apply(message, true);
  }
  for (const message of inProgress) apply(message, true);
  let after = 0;
  for (const r of responses.values()) after += r.hydratedTokens;
  return after - before;
}

function watchConnection(realtime) {
  let wasConnected = false;
  realtime.connection.on((change) => {
    switch (change.current) {
      case 'connected':
        wasConnected = true;
        setConnection('live', 'connected');
        break;
      case 'initialized':
      case 'connecting':
        setConnection('connecting', wasConnected ? 'reconnecting…' : 'connecting…');
        break;
      case 'disconnected':
      case 'suspended':
        setConnection('connecting', 'reconnecting…');
        break;
      default: // closing, closed, failed
        setConnection('error', `disconnected${change.reason ? `: ${change.reason.message}` : ''}`);
    }
  });
}

async function main() {
  renderStatus();
  if (typeof Ably === 'undefined') {
    throw new Error(
      'the ably browser bundle (vendor/ably.min.js) is missing: install Node.js 20+ and rebuild the server ' +
        '(its build runs npm ci in src/Tokenwire.Demo/web)',
    );
  }
  const config = await (await fetch('demo/config')).json();
  const channelName = pattern === 'response' ? config.responseChannel : config.channel;
  document.getElementById('channel').textContent = channelName;
  for (const link of document.querySelectorAll('#patterns a')) {
    if (link.dataset.pattern === pattern) link.setAttribute('aria-current', 'page');
  }
  document.getElementById('model').textContent = config.model === 'simulated' ? 'a simulated model, offline' : 'an OpenAI-compatible model';

  const secure = location.protocol === 'https:';
  const port = Number(location.port) || (secure ? 443 : 80);
  // The token URL returns a token that may subscribe to the demo channels and read their history, never publish; on
  // the response channel it may rate answers (annotations), as this page's clientId.
  const realtime = new Ably.Realtime({
    authUrl: new URL('demo/token', location.href).href,
    authParams: { clientId },
    clientId,
    endpoint: location.hostname,
    port,
    tlsPort: port,
    tls: secure,
    // Probe this server, never the internet, when a connection attempt fails (the page must work offline).
    disableConnectivityCheck: true,
    wsConnectivityCheckUrl: `${secure ? 'wss' : 'ws'}://${location.host}/`,
  });
  watchConnection(realtime);

  channel = realtime.channels.get(channelName);
  let live = false;
  const buffered = [];
  await channel.subscribe((message) => (live ? apply(message) : buffered.push(message)));

  status.caughtUp = await catchUp(realtime, channel);
  for (const message of buffered) apply(message);
  live = true;
  renderStatus();
  listEl.lastElementChild?.scrollIntoView({ block: 'nearest' });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const prompt = promptInput.value.trim();
    if (!prompt) return;
    const res = await fetch('demo/prompt', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt, pattern }),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      setProblem(`prompt refused: ${body.error?.message ?? res.statusText}`);
      return;
    }
    setProblem(null);
    promptInput.value = '';
  });

  // For the browser test and for poking around in the console.
  window.tokenwireDemo = { realtime, channel, responses, pattern, ready: true };
  document.body.dataset.ready = 'true';
}

main().catch((error) => {
  console.error(error);
  setConnection('error', 'the demo failed to start');
  setProblem(error.message);
});
