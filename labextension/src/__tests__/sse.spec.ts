import { ISSEFrame, isComment, readSSE, SSEItem, SSEParser } from '../sse';
import { streamOf } from './util';

const frames = (items: SSEItem[]): ISSEFrame[] =>
  items.filter(i => !isComment(i)) as ISSEFrame[];

const events = (items: SSEItem[]): any[] => frames(items).map(f => JSON.parse(f.data));

/** What the server sends (aigis_jupyter/server/stream.py): `id: N\ndata: {json}\n\n`. */
const frame = (id: number, event: unknown) => `id: ${id}\ndata: ${JSON.stringify(event)}\n\n`;

describe('SSEParser', () => {
  it('joins a frame split across chunks, at any byte', () => {
    const text =
      frame(1, { type: 'status', phase: 'sql' }) + frame(2, { type: 'chunk', content: 'Five' });
    // every possible split point into two chunks, then one character per chunk
    for (let cut = 0; cut <= text.length; cut++) {
      const p = new SSEParser();
      const out = [...p.feed(text.slice(0, cut)), ...p.feed(text.slice(cut))];
      expect(events(out)).toEqual([
        { type: 'status', phase: 'sql' },
        { type: 'chunk', content: 'Five' }
      ]);
    }
    const p = new SSEParser();
    const out = Array.from(text).flatMap(c => p.feed(c));
    expect(frames(out).map(f => f.id)).toEqual(['1', '2']);
  });

  it('returns nothing until the blank line ends the frame', () => {
    const p = new SSEParser();
    expect(p.feed('id: 1\ndata: {"type":"chunk",')).toEqual([]);
    expect(p.feed('"content":"a"}\n')).toEqual([]);
    expect(events(p.feed('\n'))).toEqual([{ type: 'chunk', content: 'a' }]);
  });

  it('yields several events from one chunk, in order', () => {
    const p = new SSEParser();
    const out = p.feed(
      frame(1, { type: 'sql', sql: 'SELECT 1' }) +
        frame(2, { type: 'table', columns: ['n'], rows: [[1]], row_count: 1, truncated: false }) +
        frame(3, { type: 'end', full_response: 'One.' })
    );
    expect(events(out).map(e => e.type)).toEqual(['sql', 'table', 'end']);
    expect(frames(out).map(f => f.id)).toEqual(['1', '2', '3']);
    expect(frames(out)[0].event).toBe('message');
  });

  it('reports keep-alive comments and dispatches no frame for them', () => {
    const p = new SSEParser();
    const out = p.feed(': keep-alive\n\n' + frame(1, { type: 'chunk', content: 'x' }) + ':x\n\n');
    expect(out.filter(isComment)).toEqual([{ comment: 'keep-alive' }, { comment: 'x' }]);
    expect(events(out)).toEqual([{ type: 'chunk', content: 'x' }]);
  });

  it('passes an error event through like any other, then the end', () => {
    const p = new SSEParser();
    const error = {
      type: 'error',
      message: 'Pick a model for this thread first.',
      reason: 'no_model',
      action: { kind: 'pick_model', choices: ['local'] }
    };
    const out = p.feed(frame(1, error) + frame(2, { type: 'end', full_response: '' }));
    expect(events(out)).toEqual([error, { type: 'end', full_response: '' }]);
  });

  it('accepts CRLF and CR line ends, even a CRLF split across chunks', () => {
    const p = new SSEParser();
    const out = [
      ...p.feed('id: 7\r'),
      ...p.feed('\ndata: {"type":"chunk","content":"a"}\r'),
      ...p.feed('\n\r'),
      ...p.feed('\ndata: {"type":"chunk","content":"b"}\r\r')
    ];
    expect(events(out)).toEqual([
      { type: 'chunk', content: 'a' },
      { type: 'chunk', content: 'b' }
    ]);
    expect(frames(out)[1].id).toBe('7'); // the last id carries over
  });

  it('joins multi-line data with newlines, strips one leading space, reads event names', () => {
    const p = new SSEParser();
    const out = frames(p.feed('event: note\ndata:first\ndata:  second\ndata\n\n'));
    expect(out).toEqual([{ event: 'note', data: 'first\n second\n', id: '' }]);
  });

  it('ignores retry and unknown fields, and a data-less frame', () => {
    const p = new SSEParser();
    expect(p.feed('retry: 1000\nfoo: bar\n\nid: 3\n\n')).toEqual([]);
    expect(p.lastEventId).toBe('3');
  });

  it('tells a cut stream from a finished one', () => {
    const done = new SSEParser();
    done.feed(frame(1, { type: 'end', full_response: '' }));
    expect(done.end().incomplete).toBe(false);
    const cut = new SSEParser();
    cut.feed('id: 1\ndata: {"type":"chu');
    expect(cut.end().incomplete).toBe(true);
  });
});

describe('readSSE', () => {
  it('decodes UTF-8 split inside a character and yields frames as they complete', async () => {
    const bytes = new TextEncoder().encode(frame(1, { type: 'chunk', content: 'Zürich — 東京' }));
    const chunks = Array.from(bytes).map(b => new Uint8Array([b])); // one byte at a time
    const out: any[] = [];
    for await (const item of readSSE(streamOf(chunks))) {
      out.push(item);
    }
    expect(out).toHaveLength(1);
    expect(JSON.parse((out[0] as ISSEFrame).data).content).toBe('Zürich — 東京');
  });

  it('ends with {incomplete: true} when the stream stops mid-frame', async () => {
    const text = frame(1, { type: 'chunk', content: 'a' }) + 'id: 2\ndata: {"ty';
    const out: any[] = [];
    for await (const item of readSSE(streamOf([new TextEncoder().encode(text)]))) {
      out.push(item);
    }
    expect(out.map(i => ('incomplete' in i ? 'cut' : 'frame'))).toEqual(['frame', 'cut']);
  });
});
