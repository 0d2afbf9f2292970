import { AigisAPI, AigisError, STREAM_LOST } from '../api';
import { ChatModel } from '../model';
import { ChatEvent } from '../types';
import { BASE, fakeServer, json, sse } from './util';

const frame = (id: number, event: unknown) => `id: ${id}\ndata: ${JSON.stringify(event)}\n\n`;

async function collect(gen: AsyncGenerator<ChatEvent>): Promise<ChatEvent[]> {
  const out: ChatEvent[] = [];
  for await (const e of gen) {
    out.push(e);
  }
  return out;
}

const THREAD = {
  id: 't1',
  title: null,
  connection_id: 'c1',
  connection_name: 'demo',
  model_name: 'local',
  created_at: null,
  updated_at: null,
  running: false
};

describe('AigisAPI requests', () => {
  afterEach(() => {
    document.cookie = '_xsrf=; expires=Thu, 01 Jan 1970 00:00:00 GMT';
  });

  it('calls {base_url}aigis/… with the token, the XSRF header and a JSON body', async () => {
    document.cookie = '_xsrf=xsrf-cookie-value';
    const { settings, seen } = fakeServer(() => json({ ...THREAD, title: 'Sales' }));
    const api = new AigisAPI(settings);
    const t = await api.renameThread('t 1', 'Sales');
    expect(t.title).toBe('Sales');
    expect(seen).toHaveLength(1);
    expect(seen[0].method).toBe('PUT');
    expect(seen[0].url).toBe(`${BASE}aigis/chat/t%201`);
    expect(seen[0].headers['authorization']).toBe('token secret-token');
    expect(seen[0].headers['x-xsrftoken']).toBe('xsrf-cookie-value');
    expect(seen[0].headers['content-type']).toBe('application/json');
    expect(JSON.parse(seen[0].body)).toEqual({ title: 'Sales' });
  });

  it('maps each operation to its route', async () => {
    const { settings, seen } = fakeServer(req => {
      if (req.method === 'DELETE') {
        return new Response(null, { status: 204 });
      }
      if (req.url.endsWith('chat/thread')) {
        return json({ ...THREAD, thread_id: 't9', id: 't9' }, 201);
      }
      if (req.url.endsWith('/cancel')) {
        return json({ cancelled: true });
      }
      return json([]);
    });
    const api = new AigisAPI(settings);
    expect((await api.createThread({ connection: 'c1' })).id).toBe('t9');
    await api.listThreads();
    await api.getMessages('t9');
    await api.setThreadConnection('t9', 'c1');
    await api.setThreadModel('t9', 'local');
    expect(await api.cancel('t9')).toBe(true);
    expect(await api.deleteThread('t9')).toBeUndefined();
    await api.listConnections();
    await api.createConnection({ name: 'demo', db_type: 'sqlite', host: '/tmp/d.sqlite' }, true);
    await api.updateConnection('c1', { password: null });
    await api.testConnection('c1');
    await api.deleteConnection('c1');
    await api.listModels();
    expect(seen.map(s => `${s.method} ${s.url.slice(BASE.length)}`)).toEqual([
      'POST aigis/chat/thread',
      'GET aigis/chat/threads',
      'GET aigis/chat/t9',
      'POST aigis/chat/t9/connection',
      'POST aigis/chat/t9/model',
      'POST aigis/chat/t9/cancel',
      'DELETE aigis/chat/t9',
      'GET aigis/connections',
      'POST aigis/connections?test=true',
      'PUT aigis/connections/c1',
      'POST aigis/connections/c1/test',
      'DELETE aigis/connections/c1',
      'GET aigis/models'
    ]);
    expect(JSON.parse(seen[0].body)).toEqual({ connection: 'c1' });
    expect(JSON.parse(seen[3].body)).toEqual({ user_connection_id: 'c1' });
    expect(JSON.parse(seen[4].body)).toEqual({ name: 'local' });
    expect(JSON.parse(seen[9].body)).toEqual({ password: null }); // null keeps the password
  });

  it("throws the server's error with its reason and action", async () => {
    const { settings } = fakeServer(() =>
      json(
        {
          message: 'Pick a model for this thread first.',
          reason: 'no_model',
          action: { kind: 'pick_model', choices: ['local'] }
        },
        400
      )
    );
    const api = new AigisAPI(settings);
    const err = await api.setThreadModel('t1', null).catch(e => e);
    expect(err).toBeInstanceOf(AigisError);
    expect(err.status).toBe(400);
    expect(err.message).toBe('Pick a model for this thread first.');
    expect(err.reason).toBe('no_model');
    expect(err.action).toEqual({ kind: 'pick_model', choices: ['local'] });
  });

  it('turns a non-JSON error page and a network failure into readable errors', async () => {
    const html = fakeServer(
      () => new Response('<html>Bad Gateway</html>', { status: 502, statusText: 'Bad Gateway' })
    );
    const e1 = await new AigisAPI(html.settings).listThreads().catch(e => e);
    expect(e1.status).toBe(502);
    expect(e1.message).toContain('Bad Gateway');
    const down = fakeServer(() => {
      throw new TypeError('Failed to fetch');
    });
    const e2 = await new AigisAPI(down.settings).listThreads().catch(e => e);
    expect(e2).toBeInstanceOf(AigisError);
    expect(e2.reason).toBe('network_error');
    expect(e2.message).toContain('did not answer');
  });
});

describe('AigisAPI verified queries', () => {
  const EXAMPLE = {
    id: 'e 1',
    connection_id: 'c/1',
    question: 'How many regions?',
    sql: 'SELECT COUNT(*) FROM regions',
    created_at: null,
    updated_at: null
  };

  it('maps list, add, update and delete to the examples routes of a connection', async () => {
    const { settings, seen } = fakeServer(req => {
      if (req.method === 'DELETE') {
        return new Response(null, { status: 204 });
      }
      if (req.method === 'GET') {
        return json([EXAMPLE]);
      }
      return json(EXAMPLE, req.method === 'POST' ? 201 : 200);
    });
    const api = new AigisAPI(settings);
    expect(await api.listExamples('c/1')).toEqual([EXAMPLE]);
    expect(
      await api.addExample('c/1', { question: 'How many regions?', sql: EXAMPLE.sql })
    ).toEqual(EXAMPLE);
    expect(await api.updateExample('c/1', 'e 1', { sql: 'SELECT 5' })).toEqual(EXAMPLE);
    expect(await api.deleteExample('c/1', 'e 1')).toBeUndefined();
    expect(seen.map(s => `${s.method} ${s.url.slice(BASE.length)}`)).toEqual([
      'GET aigis/connections/c%2F1/examples',
      'POST aigis/connections/c%2F1/examples',
      'PUT aigis/connections/c%2F1/examples/e%201',
      'DELETE aigis/connections/c%2F1/examples/e%201'
    ]);
    expect(JSON.parse(seen[1].body)).toEqual({ question: 'How many regions?', sql: EXAMPLE.sql });
    expect(JSON.parse(seen[2].body)).toEqual({ sql: 'SELECT 5' });
    expect(seen[1].headers['content-type']).toBe('application/json');
    expect(seen[3].body).toBe('');
  });

  it("throws the server's refusal: a shared connection (403), SQL that writes (422)", async () => {
    const answers = [
      json(
        {
          message: "This connection is shared with you: only its owner can teach it.",
          reason: 'forbidden'
        },
        403
      ),
      json({ message: 'Only a read query can be verified.', reason: 'sql_refused' }, 422)
    ];
    const { settings } = fakeServer(() => answers.shift()!);
    const api = new AigisAPI(settings);
    const shared = await api.addExample('c1', { question: 'q', sql: 'SELECT 1' }).catch(e => e);
    expect(shared).toBeInstanceOf(AigisError);
    expect(shared.status).toBe(403);
    expect(shared.reason).toBe('forbidden');
    expect(shared.message).toBe('This connection is shared with you: only its owner can teach it.');
    const refused = await api.addExample('c1', { question: 'q', sql: 'DROP TABLE x' }).catch(e => e);
    expect(refused.status).toBe(422);
    expect(refused.message).toBe('Only a read query can be verified.');
  });

  it('sends the notes of a connection with its other fields', async () => {
    const { settings, seen } = fakeServer(() => json({ id: 'c1', notes: 'revenue = SUM(x)' }));
    const api = new AigisAPI(settings);
    const saved = await api.updateConnection('c1', { notes: 'revenue = SUM(x)' });
    expect(saved.notes).toBe('revenue = SUM(x)');
    await api.createConnection({ name: 'd', db_type: 'sqlite', host: '/d', notes: null });
    expect(JSON.parse(seen[0].body)).toEqual({ notes: 'revenue = SUM(x)' });
    expect(JSON.parse(seen[1].body)).toEqual({
      name: 'd',
      db_type: 'sqlite',
      host: '/d',
      notes: null
    });
  });
});

describe('AigisAPI.chat (the SSE stream)', () => {
  const turn = [
    frame(1, { type: 'status', phase: 'schema' }),
    frame(2, { type: 'status', phase: 'sql' }),
    frame(3, { type: 'sql', sql: 'SELECT COUNT(*) AS n FROM regions' }),
    frame(4, { type: 'table', columns: ['n'], rows: [[5]], row_count: 1, truncated: false }),
    frame(5, { type: 'chunk', content: 'There are ' }),
    frame(6, { type: 'chunk', content: '5 regions.' }),
    frame(7, { type: 'end', full_response: 'There are 5 regions.' })
  ].join('');

  it('POSTs the question and yields every event in order, whatever the chunking', async () => {
    // a keep-alive comment between two frames, then uneven chunks cutting through frames
    const first = frame(1, { type: 'status', phase: 'schema' }).length;
    const text = turn.slice(0, first) + ': keep-alive\n\n' + turn.slice(first);
    const cuts = [0, 7, 30, 31, 100, 180, 181, 260, text.length];
    const chunks = cuts.slice(1).map((end, i) => text.slice(cuts[i], end));
    const { settings, seen } = fakeServer(() => sse(chunks));
    const comments: string[] = [];
    const events = await collect(
      new AigisAPI(settings).chat('t1', 'How many regions?', {
        onComment: c => comments.push(c)
      })
    );
    expect(seen[0].method).toBe('POST');
    expect(seen[0].url).toBe(`${BASE}aigis/chat/t1/message`);
    expect(JSON.parse(seen[0].body)).toEqual({ text: 'How many regions?' });
    expect(seen[0].headers['accept']).toBe('text/event-stream');
    expect(events.map(e => e.type)).toEqual([
      'status',
      'status',
      'sql',
      'table',
      'chunk',
      'chunk',
      'end'
    ]);
    expect(comments).toEqual(['keep-alive']);
  });

  it('throws a refusal before the turn starts (a JSON error, not a stream)', async () => {
    const { settings } = fakeServer(() =>
      json({ message: 'A turn is already running in this thread.', reason: 'busy' }, 409)
    );
    const err = await collect(new AigisAPI(settings).chat('t1', 'q')).catch(e => e);
    expect(err).toBeInstanceOf(AigisError);
    expect(err.status).toBe(409);
    expect(err.reason).toBe('busy');
  });

  it("passes the server's error event and end through", async () => {
    const { settings } = fakeServer(() =>
      sse([
        frame(1, { type: 'error', message: 'The query was refused.', reason: 'sql_refused' }),
        frame(2, { type: 'end', full_response: '' })
      ])
    );
    const events = await collect(new AigisAPI(settings).chat('t1', 'q'));
    expect(events).toEqual([
      { type: 'error', message: 'The query was refused.', reason: 'sql_refused' },
      { type: 'end', full_response: '' }
    ]);
  });

  it('ends a dropped stream with a clear error, then an end', async () => {
    const { settings } = fakeServer(() =>
      sse([frame(1, { type: 'chunk', content: 'There are' })], {
        fail: new TypeError('network error')
      })
    );
    const events = await collect(new AigisAPI(settings).chat('t1', 'q'));
    expect(events).toEqual([
      { type: 'chunk', content: 'There are' },
      { type: 'error', ...STREAM_LOST },
      { type: 'end', full_response: '' }
    ]);
  });

  it('treats a stream that closes without `end`, or mid-frame, as lost', async () => {
    for (const tail of ['', 'id: 2\ndata: {"type":"ch']) {
      const { settings } = fakeServer(() =>
        sse([frame(1, { type: 'status', phase: 'sql' }) + tail])
      );
      const events = await collect(new AigisAPI(settings).chat('t1', 'q'));
      expect(events.map(e => e.type)).toEqual(['status', 'error', 'end']);
      expect((events[1] as any).reason).toBe('stream_lost');
    }
  });
});

describe('ChatModel over the API', () => {
  it('shows a dropped turn as an error and keeps the thread usable', async () => {
    let asks = 0;
    const { settings } = fakeServer(req => {
      const path = req.url.slice(BASE.length);
      if (path === 'aigis/chat/threads') {
        return json([THREAD]);
      }
      if (path === 'aigis/connections' || path === 'aigis/models' || path === 'aigis/chat/t1') {
        return json([]);
      }
      if (path === 'aigis/chat/t1/model') {
        return json({ thread_id: 't1', model: 'local', models: [], available: {} });
      }
      if (path === 'aigis/chat/t1/message') {
        asks++;
        if (asks === 1) {
          return sse([frame(1, { type: 'chunk', content: 'Half an' })], {
            fail: new TypeError('network error')
          });
        }
        return sse([
          frame(1, { type: 'chunk', content: 'Five.' }),
          frame(2, { type: 'end', full_response: 'Five.' })
        ]);
      }
      return json({ message: 'not found' }, 404);
    });
    const model = new ChatModel(new AigisAPI(settings));
    await model.load();
    expect(model.threadId).toBe('t1');
    expect(model.threadModel).toBe('local');

    await model.send('How many regions?');
    expect(model.running).toBe(false);
    const [first] = model.turns;
    expect(first.answer).toBe('Half an');
    expect(first.running).toBe(false);
    expect(first.error?.reason).toBe('stream_lost');
    expect(first.error?.message).toMatch(/connection to the server was lost/);

    await model.send('How many regions?');
    expect(asks).toBe(2);
    expect(model.turns).toHaveLength(2);
    expect(model.turns[1].answer).toBe('Five.');
    expect(model.turns[1].error).toBeNull();
  });

  it('restores the open thread and the picked connection', async () => {
    const other = { ...THREAD, id: 't2', title: 'Other' };
    const { settings } = fakeServer(req => {
      const path = req.url.slice(BASE.length);
      if (path === 'aigis/chat/threads') {
        return json([THREAD, other]);
      }
      if (path === 'aigis/connections') {
        return json([{ id: 'c7', name: 'demo' }]);
      }
      if (path.endsWith('/model')) {
        return json({ thread_id: 't2', model: null, models: [], available: {} });
      }
      return json([]);
    });
    const model = new ChatModel(new AigisAPI(settings));
    const saved: any[] = [];
    model.stateChanged.connect((_, s) => saved.push(s));
    await model.load({ threadId: 't2', connectionId: 'c7' });
    expect(model.threadId).toBe('t2');
    expect(model.threadModel).toBeNull();
    expect(model.lastConnectionId).toBe('c7');
    expect(saved[saved.length - 1]).toEqual({ threadId: 't2', connectionId: 'c7' });
    // a thread that is gone falls back to the newest
    const again = new ChatModel(new AigisAPI(settings));
    await again.load({ threadId: 'gone', connectionId: 'gone' });
    expect(again.threadId).toBe('t1');
    expect(again.lastConnectionId).toBeNull();
  });
});
