import { cellsToInsert, connectionRef, LOAD_EXT, loadsExtension, sqlCell } from '../cell';
import { answerMarkdown, tableHtml } from '../html';
import {
  applyEvent,
  canVerify,
  chartMark,
  newTurn,
  questionKey,
  sameSql,
  turnsFromMessages,
  verifyState
} from '../turn';
import { ChatEvent, IMessageInfo } from '../types';

describe('turns', () => {
  it('folds a live stream like the Python TurnRecord', () => {
    const stream: ChatEvent[] = [
      { type: 'status', phase: 'schema' },
      { type: 'status', phase: 'sql' },
      { type: 'sql', sql: 'SELECT 1', verified: true },
      { type: 'status', phase: 'executing' },
      { type: 'table', columns: ['n'], rows: [[1]], row_count: 1, truncated: false },
      { type: 'chart', spec: { mark: { type: 'bar' } } },
      { type: 'chunk', content: 'One ' },
      { type: 'chunk', content: 'row.' },
      { type: 'suggestions', suggestions: ['And two?'] },
      { type: 'end', full_response: 'ignored: chunks came' }
    ];
    let t = newTurn('k', 'q');
    const phases: (string | null)[] = [];
    for (const e of stream) {
      t = applyEvent(t, e);
      phases.push(t.phase);
    }
    expect(phases.slice(0, 4)).toEqual(['schema', 'sql', 'sql', 'executing']);
    expect(t).toMatchObject({
      answer: 'One row.',
      sql: 'SELECT 1',
      verified: true,
      table: { columns: ['n'], rows: [[1]], row_count: 1, truncated: false },
      chart: { mark: { type: 'bar' } },
      suggestions: ['And two?'],
      running: false,
      phase: null,
      error: null
    });
    expect(applyEvent(newTurn('k', 'q'), { type: 'end', full_response: 'Full.' }).answer).toBe(
      'Full.'
    );
  });

  it('marks a cancelled turn as stopped', () => {
    const t = applyEvent(newTurn('k', 'q'), {
      type: 'error',
      message: 'The question was cancelled; the thread is ready for the next one.',
      reason: 'cancelled'
    });
    expect(t.stopped).toBe(true);
  });

  it('rebuilds turns from stored messages', () => {
    const msg = (id: number, role: string, content: string, payload: any = null): IMessageInfo => ({
      id,
      thread_id: 't',
      role,
      content,
      payload,
      created_at: null
    });
    const turns = turnsFromMessages([
      msg(1, 'user', 'How many?'),
      msg(2, 'assistant', 'Five.', { sql: 'SELECT 5', table: { columns: ['n'], rows: [[5]] } }),
      msg(3, 'user', 'Stop this'),
      msg(4, 'assistant', '', { error: { message: 'Cancelled.', reason: 'cancelled' } })
    ]);
    expect(turns.map(t => [t.question, t.answer, t.sql, t.stopped, t.running])).toEqual([
      ['How many?', 'Five.', 'SELECT 5', false, false],
      ['Stop this', '', null, true, false]
    ]);
  });

  it('tells which turns can be verified, and which already are', () => {
    const done = { ...newTurn('k', 'How many regions?'), running: false, sql: 'SELECT 5' };
    expect(canVerify(done)).toBe(true);
    expect(canVerify({ ...done, running: true })).toBe(false);
    expect(canVerify({ ...done, sql: null })).toBe(false);
    expect(canVerify({ ...done, question: '' })).toBe(false);
    expect(canVerify({ ...done, error: { message: 'Refused.', reason: 'sql_refused' } })).toBe(
      false
    );
    const example = {
      id: 'e',
      connection_id: 'c1',
      question: '  how MANY   regions ',
      sql: 'SELECT  5;',
      created_at: null,
      updated_at: null
    };
    expect(verifyState(done, 'c1')).toBe('ready');
    expect(verifyState({ ...done, verifying: true }, 'c1')).toBe('saving');
    expect(verifyState({ ...done, verified: true }, 'c1')).toBe('verified');
    expect(verifyState({ ...done, savedOn: 'c1' }, 'c1')).toBe('verified');
    expect(verifyState({ ...done, savedOn: 'c1' }, 'c2')).toBe('ready');
    expect(verifyState(done, 'c1', [example])).toBe('verified');
    expect(verifyState(done, 'c1', [{ ...example, sql: 'SELECT 6' }])).toBe('ready');
    expect(verifyState({ ...done, running: true, verified: true }, 'c1')).toBe('none');
    // folded as the server folds questions (`validation.question_key`)
    expect(questionKey(' How  many\tregions?! ')).toBe('how many regions');
    expect(sameSql('SELECT a\n  FROM t;', 'SELECT a FROM t')).toBe(true);
    expect(sameSql('SELECT a FROM t', 'SELECT b FROM t')).toBe(false);
  });

  it('reads the mark of a chart', () => {
    expect(chartMark({ mark: 'line' })).toBe('line');
    expect(chartMark({ mark: { type: 'bar', tooltip: true } })).toBe('bar');
    expect(chartMark({ layer: [] })).toBe('auto');
    expect(chartMark(null)).toBeNull();
  });
});

describe('the notebook cells of an answer', () => {
  it('writes the %%aigis sql cell: connection, variable, chart mark, SQL body', () => {
    expect(
      sqlCell({
        sql: '  SELECT segment, COUNT(*) AS n FROM customers GROUP BY segment ',
        connection: 'demo',
        variable: 'df',
        chart: { mark: { type: 'bar' } }
      })
    ).toBe(
      '%%aigis sql --conn demo -o df --chart bar\nSELECT segment, COUNT(*) AS n FROM customers GROUP BY segment\n'
    );
    expect(sqlCell({ sql: 'SELECT 1', connection: 'demo', chart: { layer: [] } })).toBe(
      '%%aigis sql --conn demo --chart\nSELECT 1\n'
    );
    expect(sqlCell({ sql: 'SELECT 1', connection: 'demo' })).toBe(
      '%%aigis sql --conn demo\nSELECT 1\n'
    );
  });

  it('loads the extension first unless a cell above does', () => {
    const opts = { sql: 'SELECT 1', connection: 'demo', variable: 'df' };
    expect(cellsToInsert(['import pandas'], opts)).toEqual([LOAD_EXT, sqlCell(opts)]);
    expect(cellsToInsert(['x = 1\n%load_ext aigis_jupyter', ''], opts)).toEqual([sqlCell(opts)]);
    expect(loadsExtension('%reload_ext aigis_jupyter')).toBe(true);
    expect(loadsExtension('# %load_ext aigis_jupyter_other')).toBe(false);
  });

  it('names a connection by id when its name would not survive the option split', () => {
    expect(connectionRef('demo', 'id-1')).toBe('demo');
    expect(connectionRef('my sales', 'id-1')).toBe('id-1');
    expect(connectionRef('"q"', 'id-1')).toBe('id-1');
    expect(connectionRef(null, 'id-1')).toBe('id-1');
  });
});

describe('result tables', () => {
  it('escapes every cell and header', () => {
    const html = tableHtml(['<b>'], [['<script>x</script>'], [null], [3]]);
    expect(html).toContain('<th>&lt;b&gt;</th>');
    expect(html).toContain('<td>&lt;script&gt;x&lt;/script&gt;</td>');
    expect(html).toContain('<td><em>null</em></td>');
    expect(html).not.toContain('<script>');
  });
});

describe('answers as markdown', () => {
  it('keeps COUNT(*) and dollar amounts literal, and markdown otherwise', () => {
    expect(answerMarkdown('COUNT(*) = 430; COUNT(*) = 47')).toBe('COUNT(\\*) = 430; COUNT(\\*) = 47');
    expect(answerMarkdown('between $5 and $7')).toBe('between \\$5 and \\$7');
    expect(answerMarkdown('**Top** region: North')).toBe('**Top** region: North');
  });

  it('shows raw HTML as its characters and keeps images from loading', () => {
    expect(answerMarkdown('<img src=x onerror="alert(1)"> and <script>x</script>')).toBe(
      '&lt;img src=x onerror="alert(1)"> and &lt;script>x&lt;/script>'
    );
    expect(answerMarkdown('a < b, see ![chart](https://example.org/?q=secret)')).toBe(
      'a &lt; b, see !\\[chart](https://example.org/?q=secret)'
    );
  });

  it('renders code as written, as character references, also while a fence is open', () => {
    expect(answerMarkdown('Run `COUNT(*) < $5`, not <b>.')).toBe(
      'Run <code>COUNT&#40;&#42;&#41; &#60; &#36;5</code>, not &lt;b>.'
    );
    expect(answerMarkdown('Use:\r\n```sql\r\nSELECT a<2\r\n```\r\nthen <b>')).toBe(
      'Use:\n<pre><code>SELECT a&#60;2</code></pre>\nthen &lt;b>'
    );
    expect(answerMarkdown('Use:\n```sql\nSELECT a<2')).toBe(
      'Use:\n<pre><code>SELECT a&#60;2</code></pre>'
    );
    // an escaped backtick opens no code span, so what follows is prose
    expect(answerMarkdown('\\`<img src=x>`')).toBe('\\`&lt;img src=x>`');
  });
});
