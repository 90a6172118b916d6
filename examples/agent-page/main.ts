/// <reference lib="dom" />
/**
 * An agent's page on the live feed's browser client (functions/live-feed/client.ts): every chat of the
 * agent's instances with its presence, "typing…" within a second of the callback and gone by itself when
 * the typing stops. Every name is put on the page as text, never as HTML.
 *
 * `npm start` serves it at http://127.0.0.1:3000/ with its settings filled in (a local token that sees
 * every instance); against AWS, build it (`npx esbuild examples/agent-page/main.ts --bundle --format=esm
 * --outfile=examples/agent-page/main.js`), open index.html and fill in the stack's outputs and a token.
 */
import {
  type ChatPresence,
  connectPresenceFeed,
  type FeedConnectionState,
  type PresenceFeed,
} from '../../functions/live-feed/client.ts';

export interface AgentPageConfig {
  readonly realtimeUrl: string;
  readonly httpDomain: string;
  readonly snapshotUrl: string;
  readonly instanceIds: readonly string[];
  readonly token: string;
  /** @default 25 s */
  readonly activityExpiryMs?: number;
}

declare global {
  interface Window {
    ZAPI_PRESENCE_CONFIG?: AgentPageConfig;
    /** The feed, for a test or a console. */
    zapiPresenceFeed?: PresenceFeed;
  }
}

const STATES: Record<FeedConnectionState, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  closed: 'Closed',
};

const list = document.getElementById('chats') as HTMLUListElement;
const connection = document.getElementById('connection') as HTMLElement;
const problems = document.getElementById('problems') as HTMLElement;
const rows = new Map<string, HTMLLIElement>();

const keyOf = (chat: ChatPresence) =>
  `${chat.instanceId}/${chat.phone}${chat.participant !== undefined ? `#${chat.participant}` : ''}`;

function describe(chat: ChatPresence): [string, string] {
  if (chat.activity === 'typing') return ['typing', 'is typing…'];
  if (chat.activity === 'recording') return ['recording', 'is recording audio…'];
  return chat.online ? ['online', 'online'] : ['offline', 'offline'];
}

function render(chat: ChatPresence): void {
  const key = keyOf(chat);
  let row = rows.get(key);
  if (row === undefined) {
    row = document.createElement('li');
    row.dataset.chat = key;
    const who = document.createElement('div');
    const name = document.createElement('div');
    name.className = 'chat';
    const instance = document.createElement('div');
    instance.className = 'instance';
    who.append(name, instance);
    const what = document.createElement('div');
    what.className = 'what';
    row.append(who, what);
    rows.set(key, row);
  }
  // Text only: a chat name is whatever WhatsApp sent.
  (row.querySelector('.chat') as HTMLElement).textContent =
    chat.participant !== undefined ? `${chat.participant} in ${chat.phone}` : chat.phone;
  (row.querySelector('.instance') as HTMLElement).textContent = `instance ${chat.instanceId}`;
  const [kind, text] = describe(chat);
  const what = row.querySelector('.what') as HTMLElement;
  what.textContent = text;
  what.className = `what ${kind}`;
  // The chat that changed goes to the top.
  list.prepend(row);
}

export function start(config: AgentPageConfig): PresenceFeed {
  const feed = connectPresenceFeed({
    realtimeUrl: config.realtimeUrl,
    httpDomain: config.httpDomain,
    snapshotUrl: config.snapshotUrl,
    instanceIds: config.instanceIds,
    token: () => config.token,
    ...(config.activityExpiryMs !== undefined && { activityExpiryMs: config.activityExpiryMs }),
    onChange: render,
    onState: (state) => {
      connection.dataset.state = state;
      connection.textContent = STATES[state];
    },
    onProblem: (problem) => {
      if (problem.instanceId === undefined) {
        const line = document.createElement('div');
        line.textContent = problem.reason.startsWith('connection-')
          ? 'the connection was refused: sign in again (your token may have expired)'
          : `the connection: ${problem.reason}`;
        problems.replaceChildren(line);
        return;
      }
      // Its chats are no longer this agent's to see.
      if (problem.reason === 'Unauthorized' || problem.reason === 'snapshot-403') {
        for (const [key, row] of rows) {
          if (key.startsWith(`${problem.instanceId}/`)) {
            row.remove();
            rows.delete(key);
          }
        }
      }
      const line = document.createElement('div');
      line.textContent = `instance ${problem.instanceId}: ${problem.reason === 'Unauthorized' || problem.reason === 'snapshot-403' ? 'your account may not see it' : problem.reason}`;
      problems.append(line);
    },
  });
  window.zapiPresenceFeed = feed;
  return feed;
}

const injected = window.ZAPI_PRESENCE_CONFIG;
if (injected !== undefined) {
  start(injected);
} else {
  // Against AWS: the settings from the form. Kept in this page's own storage, never taken from the
  // address: a crafted link must not point the token the agent types at someone else's endpoint.
  const form = document.getElementById('settings') as HTMLFormElement;
  form.hidden = false;
  connection.textContent = 'Fill in the settings and connect.';
  const KEY = 'zapi-presence-agent-page';
  const FIELDS = ['realtimeUrl', 'httpDomain', 'snapshotUrl', 'instances'] as const;
  const field = (name: string) => form.elements.namedItem(name) as HTMLInputElement;
  let saved: Record<string, string> = {};
  try {
    saved = JSON.parse(localStorage.getItem(KEY) ?? '{}') as Record<string, string>;
  } catch {
    saved = {};
  }
  for (const name of FIELDS) field(name).value = typeof saved[name] === 'string' ? saved[name] : '';
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = (name: string) => field(name).value.trim();
    localStorage.setItem(KEY, JSON.stringify(Object.fromEntries(FIELDS.map((name) => [name, value(name)]))));
    form.hidden = true;
    start({
      realtimeUrl: value('realtimeUrl'),
      httpDomain: value('httpDomain'),
      snapshotUrl: value('snapshotUrl'),
      instanceIds: value('instances')
        .split(',')
        .map((id) => id.trim())
        .filter(Boolean),
      token: value('token'),
    });
  });
}
