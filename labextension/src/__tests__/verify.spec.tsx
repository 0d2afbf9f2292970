/**
 * "Verify": a finished turn's question and SQL saved as a verified query of the thread's
 * connection, in the model and as the turn shows it (rendered with React in jsdom).
 */

import React, { act } from 'react';

import { AigisAPI } from '../api';
import { TurnView } from '../components/turnview';
import { VERIFIED_TEXT, VERIFY_LABEL } from '../components/verify';
import { ChatModel } from '../model';
import { ITurn } from '../turn';
import { IExample, IMessageInfo } from '../types';
import { BASE, fakeServer, ISeen, json, sse } from './util';

// react-dom ships no types here (no @types/react-dom in the lock file): what the tests use
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { createRoot } = require('react-dom/client') as {
  createRoot(node: Element): { render(el: React.ReactNode): void; unmount(): void };
};
(globalThis as any).IS_REACT_ACT_ENVIRONMENT = true;

const THREAD = {
  id: 't1',
  title: 'Regions',
  connection_id: 'c1',
  connection_name: 'demo',
  model_name: 'scripted',
  created_at: null,
  updated_at: null,
  running: false
};
const CONNECTION = {
  id: 'c1',
  name: 'demo',
  db_type: 'sqlite',
  host: '/tmp/demo.sqlite',
  port: null,
  database: null,
  username: null,
  has_password: false,
  allow_write: false,
  options: {},
  notes: null,
  created_at: null,
  updated_at: null
};
const SQL = 'SELECT COUNT(*) AS regions FROM regions';

const msg = (id: number, role: string, content: string, payload: any = null): IMessageInfo => ({
  id,
  thread_id: 't1',
  role,
  content,
  payload,
  created_at: null
});

/** A stored thread: a plain answer, one from a verified query, one that failed, one taught. */
const MESSAGES = [
  msg(1, 'user', 'How many regions?'),
  msg(2, 'assistant', 'There are 5 regions.', {
    sql: SQL,
    suggestions: ['Which region has the most customers?']
  }),
  msg(3, 'user', 'How many regions are there'),
  msg(4, 'assistant', 'There are 5 regions.', { sql: SQL, verified: true }),
  msg(5, 'user', 'Read the poisoned table'),
  msg(6, 'assistant', '', {
    sql: 'SELECT * FROM nope',
    error: { message: "Table 'nope' does not exist.", reason: 'sql_error' }
  }),
  msg(7, 'user', 'Which segments are there?'),
  msg(8, 'assistant', 'Three.', { sql: 'SELECT DISTINCT segment FROM customers' })
];

const TAUGHT: IExample = {
  id: 'e0',
  connection_id: 'c1',
  question: 'which segments are there',
  sql: 'SELECT DISTINCT segment\nFROM customers;',
  created_at: null,
  updated_at: null
};

interface IServerOptions {
  /** What `POST .../examples` answers, in turn (the last one repeats). */
  posts?: (() => Response)[];
  connectionId?: string | null;
  examples?: IExample[];
}

function server(options: IServerOptions = {}) {
  const posts = options.posts ?? [() => created()];
  const thread = {
    ...THREAD,
    connection_id: options.connectionId === undefined ? 'c1' : options.connectionId
  };
  let asked = 0;
  const made = fakeServer((req: ISeen) => {
    const path = req.url.slice(BASE.length);
    switch (path) {
      case 'aigis/chat/threads':
        return json([thread]);
      case 'aigis/connections':
        return json([CONNECTION]);
      case 'aigis/models':
        return json([]);
      case 'aigis/chat/t1':
        return json(MESSAGES);
      case 'aigis/chat/t1/model':
        return json({ thread_id: 't1', model: 'scripted', models: [], available: {} });
      case 'aigis/chat/t1/message':
        return sse([
          `data: ${JSON.stringify({ type: 'chunk', content: 'Asked.' })}\n\n`,
          `data: ${JSON.stringify({ type: 'end', full_response: 'Asked.' })}\n\n`
        ]);
      case 'aigis/connections/c1/examples':
        if (req.method === 'GET') {
          return json(options.examples ?? [TAUGHT]);
        }
        return posts[Math.min(asked++, posts.length - 1)]();
    }
    return json({ message: `not found: ${path}`, reason: 'not_found' }, 404);
  });
  return made;
}

function created(): Response {
  return json(
    {
      id: 'e1',
      connection_id: 'c1',
      question: 'How many regions?',
      sql: SQL,
      created_at: '2026-01-01T00:00:00Z',
      updated_at: '2026-01-01T00:00:00Z'
    },
    201
  );
}

const FORBIDDEN = () =>
  json(
    {
      message: 'This connection is shared with you: only its owner can teach it.',
      reason: 'forbidden'
    },
    403
  );

/** Let pending requests (the examples, loaded beside the thread) finish. */
const settle = () => new Promise(resolve => setTimeout(resolve, 20));

async function loaded(options: IServerOptions = {}) {
  const { settings, seen } = server(options);
  const model = new ChatModel(new AigisAPI(settings));
  await model.load();
  await settle();
  const turn = (question: string): ITurn => model.turns.find(t => t.question === question)!;
  return { model, seen, turn };
}

describe('ChatModel: verifying a turn', () => {
  it('shows each stored turn in its state: ready, verified, taught before, none', async () => {
    const { model, seen, turn } = await loaded();
    expect(model.turns).toHaveLength(4);
    expect(model.verifyStateOf(turn('How many regions?'))).toBe('ready');
    expect(model.verifyStateOf(turn('How many regions are there'))).toBe('verified');
    expect(model.verifyStateOf(turn('Read the poisoned table'))).toBe('none');
    // saved earlier: the question folded (case, "?") and the SQL's spacing and ";" aside
    expect(model.verifyStateOf(turn('Which segments are there?'))).toBe('verified');
    expect(seen.filter(s => s.url.endsWith('/examples')).map(s => s.method)).toEqual(['GET']);
  });

  it('POSTs the turn question and SQL to the thread connection, then shows it verified', async () => {
    const { model, seen, turn } = await loaded({ examples: [] });
    const key = turn('How many regions?').key;
    const saving = model.verifyTurn(key);
    expect(model.verifyStateOf(turn('How many regions?'))).toBe('saving');
    await saving;
    const post = seen.filter(s => s.method === 'POST');
    expect(post.map(s => s.url.slice(BASE.length))).toEqual(['aigis/connections/c1/examples']);
    expect(JSON.parse(post[0].body)).toEqual({ question: 'How many regions?', sql: SQL });
    expect(turn('How many regions?').savedOn).toBe('c1');
    expect(turn('How many regions?').verifyError).toBeNull();
    expect(model.verifyStateOf(turn('How many regions?'))).toBe('verified');
    expect(model.examples.get('c1')?.map(e => e.id)).toEqual(['e1']);
    // saved on c1 only: on another connection the turn can be taught again
    model.threads = model.threads.map(t => ({ ...t, connection_id: 'c2' }));
    expect(model.verifyStateOf(turn('How many regions?'))).toBe('ready');
  });

  it("keeps the server's refusal on the turn, in its words, until a retry succeeds", async () => {
    const { model, turn } = await loaded({ posts: [FORBIDDEN, created] });
    const key = turn('How many regions?').key;
    await model.verifyTurn(key);
    expect(model.verifyStateOf(turn('How many regions?'))).toBe('ready');
    expect(turn('How many regions?').verifyError).toEqual({
      message: 'This connection is shared with you: only its owner can teach it.',
      reason: 'forbidden',
      action: null
    });
    await model.verifyTurn(key);
    expect(turn('How many regions?').verifyError).toBeNull();
    expect(model.verifyStateOf(turn('How many regions?'))).toBe('verified');
  });

  it('asks nothing for a turn that cannot be verified, and says why without a connection', async () => {
    const { model, seen, turn } = await loaded({ connectionId: null });
    await model.verifyTurn(turn('Read the poisoned table').key);
    await model.verifyTurn(turn('How many regions?').key);
    expect(seen.filter(s => s.method === 'POST')).toEqual([]);
    expect(turn('Read the poisoned table').verifyError).toBeNull();
    expect(turn('How many regions?').verifyError?.reason).toBe('no_connection');
  });

  it('shows a live turn whose SQL came from a verified query as verified once it ends', async () => {
    const { settings } = fakeServer(req => {
      const path = req.url.slice(BASE.length);
      if (path === 'aigis/chat/threads') {
        return json([THREAD]);
      }
      if (path === 'aigis/connections') {
        return json([CONNECTION]);
      }
      if (path === 'aigis/chat/t1/model') {
        return json({ thread_id: 't1', model: 'scripted', models: [], available: {} });
      }
      if (path === 'aigis/chat/t1/message') {
        const frames = [
          { type: 'sql', sql: SQL, verified: true },
          { type: 'chunk', content: 'Five.' },
          { type: 'end', full_response: 'Five.' }
        ];
        return sse(frames.map(f => `data: ${JSON.stringify(f)}\n\n`));
      }
      return json([]);
    });
    const model = new ChatModel(new AigisAPI(settings));
    await model.load();
    await model.send('How many regions?');
    const [t] = model.turns;
    expect(t.verified).toBe(true);
    expect(model.verifyStateOf(t)).toBe('verified');
  });
});

describe('TurnView: the Verify button', () => {
  let node: HTMLDivElement;
  let root: ReturnType<typeof createRoot>;

  beforeEach(() => {
    node = document.createElement('div');
    document.body.appendChild(node);
    root = createRoot(node);
  });

  afterEach(() => {
    act(() => root.unmount());
    node.remove();
  });

  /**
   * The turn of `question` as the panel shows it, re-rendered on every model change. No
   * renderers here: the answer's markdown shows "no renderer", the rest is the sidebar's.
   */
  function show(model: ChatModel, question: string): void {
    const render = () => {
      const turn = model.turns.find(t => t.question === question)!;
      root.render(
        <TurnView
          turn={turn}
          model={model}
          rendermime={{ mimeTypes: [] } as any}
          canInsert={Boolean(model.thread?.connection_id)}
          onInsert={async () => undefined}
        />
      );
    };
    model.changed.connect(render);
    act(render);
  }

  const verifyButton = () =>
    node.querySelector<HTMLButtonElement>(`button[aria-label="${VERIFY_LABEL}"]`);
  const verified = () => node.querySelector('.jp-AigisChat-verified');
  const alerts = () => Array.from(node.querySelectorAll('[role=alert]')).map(a => a.textContent);

  it('turns into a "Verified ✓" that cannot be clicked once saved', async () => {
    const { model, seen } = await loaded({ examples: [] });
    show(model, 'How many regions?');
    const button = verifyButton()!;
    expect(button).not.toBeNull();
    expect(button.disabled).toBe(false);
    expect(button.textContent).toBe('Verify');
    expect(verified()).toBeNull();
    await act(async () => {
      button.click();
      await settle();
    });
    expect(seen.filter(s => s.method === 'POST')).toHaveLength(1);
    expect(verifyButton()).toBeNull();
    expect(verified()?.textContent).toBe(VERIFIED_TEXT);
    expect(verified()?.tagName).toBe('SPAN'); // text, not a button
    expect(alerts()).toEqual([]);
  });

  it("shows the server's refusal beside the button, as text", async () => {
    const markup = '<img src=x onerror="window.__pwned=1"> is shared: only its owner can teach it';
    const { model } = await loaded({
      examples: [],
      posts: [() => json({ message: markup, reason: 'forbidden' }, 403)]
    });
    show(model, 'How many regions?');
    await act(async () => {
      verifyButton()!.click();
      await settle();
    });
    expect(alerts()).toEqual([markup]);
    expect(node.querySelector('.jp-AigisChat-turnActions [role=alert]')).not.toBeNull();
    expect(node.querySelector('img')).toBeNull();
    expect(verifyButton()!.disabled).toBe(false); // it can be tried again
    expect(verified()).toBeNull();
  });

  it('shows a turn from a verified query verified from the start, and no button on errors', async () => {
    const { model } = await loaded();
    show(model, 'How many regions are there');
    expect(verified()?.textContent).toBe(VERIFIED_TEXT);
    expect(verifyButton()).toBeNull();
    expect(node.querySelector('summary')?.textContent).toBe('SQL (verified query)');
    act(() => root.render(null));
    show(model, 'Read the poisoned table');
    expect(verifyButton()).toBeNull();
    expect(verified()).toBeNull();
  });

  it('is disabled, saying why, when the thread has no connection', async () => {
    const { model } = await loaded({ connectionId: null });
    show(model, 'How many regions?');
    expect(verifyButton()!.disabled).toBe(true);
    expect(verifyButton()!.title).toMatch(/no connection/);
  });

  it('asks a suggested question as the next question of the thread', async () => {
    const { model, seen } = await loaded();
    show(model, 'How many regions?');
    const suggestion = node.querySelector<HTMLButtonElement>('.jp-AigisChat-suggestion')!;
    expect(suggestion.textContent).toBe('Which region has the most customers?');
    await act(async () => {
      suggestion.click();
      await settle();
    });
    const asked = seen.filter(s => s.url.endsWith('/chat/t1/message'));
    expect(asked.map(s => JSON.parse(s.body))).toEqual([
      { text: 'Which region has the most customers?' }
    ]);
    expect(model.turns[model.turns.length - 1].question).toBe(
      'Which region has the most customers?'
    );
  });
});
