/**
 * A chat turn folded from its events: what the message list shows. The same folding
 * as the Python `TurnRecord`, so a live turn and a stored one look alike.
 */

import {
  ChatEvent,
  IErrorInfo,
  IExample,
  IMessageInfo,
  ITableData,
  Phase
} from './types';

export interface ITurn {
  /** A client-side key: the stored message id, or a local counter for a live turn. */
  key: string;
  question: string;
  answer: string;
  phase: Phase | null;
  sql: string | null;
  /** The SQL is a verified query's (the server said so in its `sql` event). */
  verified: boolean;
  table: ITableData | null;
  chart: Record<string, unknown> | null;
  error: IErrorInfo | null;
  suggestions: string[];
  /** Still streaming. */
  running: boolean;
  /** Stopped by the user. */
  stopped: boolean;
  /** "Save as a verified query" is under way. */
  verifying: boolean;
  /** The connection this turn's question and SQL were saved on as a verified query. */
  savedOn: string | null;
  /** Why saving it failed, in the server's words (a shared connection, SQL refused...). */
  verifyError: IErrorInfo | null;
}

/**
 * Where a turn stands as a verified query, for its "Verify" button:
 * `none` (no button: no SQL, an error, still running), `ready`, `saving`, `verified`.
 */
export type VerifyState = 'none' | 'ready' | 'saving' | 'verified';

/** The progress line a `status` event's phase becomes. */
export const PHASE_LABELS: Record<Phase, string> = {
  schema: 'Reading schema',
  sql: 'Writing SQL',
  executing: 'Running',
  charting: 'Charting',
  answering: 'Answering'
};

export function newTurn(key: string, question: string): ITurn {
  return {
    key,
    question,
    answer: '',
    phase: null,
    sql: null,
    verified: false,
    table: null,
    chart: null,
    error: null,
    suggestions: [],
    running: true,
    stopped: false,
    verifying: false,
    savedOn: null,
    verifyError: null
  };
}

/** Fold one event in; returns a new object (React state is immutable). */
export function applyEvent(turn: ITurn, event: ChatEvent): ITurn {
  switch (event.type) {
    case 'status':
      return { ...turn, phase: event.phase };
    case 'chunk':
      return { ...turn, answer: turn.answer + String(event.content ?? '') };
    case 'sql':
      return { ...turn, sql: event.sql, verified: Boolean(event.verified) };
    case 'table':
      return {
        ...turn,
        table: {
          columns: event.columns,
          rows: event.rows,
          row_count: event.row_count,
          truncated: event.truncated
        }
      };
    case 'chart':
      return { ...turn, chart: event.spec };
    case 'error': {
      const error: IErrorInfo = { message: event.message, reason: event.reason };
      if (event.action) {
        error.action = event.action;
      }
      return {
        ...turn,
        error,
        stopped: turn.stopped || event.reason === 'cancelled'
      };
    }
    case 'suggestions':
      return { ...turn, suggestions: [...(event.suggestions ?? [])] };
    case 'end':
      return {
        ...turn,
        running: false,
        phase: null,
        answer: turn.answer || String(event.full_response ?? '')
      };
    default:
      return turn; // tool_result and future kinds: the typed events carry the same
  }
}

/** Stored messages (user, assistant, user, ...) as turns. */
export function turnsFromMessages(messages: IMessageInfo[]): ITurn[] {
  const turns: ITurn[] = [];
  let current: ITurn | null = null;
  for (const m of messages) {
    if (m.role === 'user') {
      current = { ...newTurn(`m${m.id}`, m.content), running: false };
      turns.push(current);
      continue;
    }
    if (m.role !== 'assistant') {
      continue;
    }
    if (!current || current.answer || current.sql || current.error) {
      current = { ...newTurn(`m${m.id}`, ''), running: false };
      turns.push(current);
    }
    const p = m.payload ?? {};
    current.answer = m.content ?? '';
    current.sql = p.sql ?? null;
    current.verified = Boolean(p.verified);
    current.table = p.table ?? null;
    current.chart = p.chart ?? null;
    current.error = p.error ?? null;
    current.suggestions = p.suggestions ?? [];
    current.stopped = p.error?.reason === 'cancelled';
    current = null;
  }
  return turns;
}

/** Can this turn be saved as a verified query: finished, with a question, SQL and no error? */
export function canVerify(turn: ITurn): boolean {
  return !turn.running && !turn.error && Boolean(turn.sql?.trim()) && Boolean(turn.question.trim());
}

/**
 * A question folded for comparison as the server folds it (`validation.question_key`):
 * case and spacing ignored, and a closing "?", "." or "!".
 */
export function questionKey(text: string): string {
  return text.toLowerCase().split(/\s+/).filter(Boolean).join(' ').replace(/[?.! ]+$/, '');
}

/** SQL compared as text, spacing and a closing semicolon aside. */
export function sameSql(a: string, b: string): boolean {
  const norm = (s: string) => s.trim().replace(/;+\s*$/, '').split(/\s+/).join(' ');
  return norm(a) === norm(b);
}

/** Is this turn's question, with this SQL, one of the connection's verified queries? */
export function matchesExample(turn: ITurn, examples: readonly IExample[]): boolean {
  if (!turn.sql) {
    return false;
  }
  const key = questionKey(turn.question);
  return examples.some(e => questionKey(e.question) === key && sameSql(e.sql, turn.sql!));
}

/**
 * The "Verify" button's state on the thread's current connection (`connectionId`), whose
 * verified queries, as far as loaded, are `examples`.
 */
export function verifyState(
  turn: ITurn,
  connectionId: string | null,
  examples: readonly IExample[] = []
): VerifyState {
  if (!canVerify(turn)) {
    return 'none';
  }
  if (turn.verifying) {
    return 'saving';
  }
  if (
    turn.verified ||
    (connectionId !== null && turn.savedOn === connectionId) ||
    matchesExample(turn, examples)
  ) {
    return 'verified';
  }
  return 'ready';
}

/** The mark of a Vega-Lite spec, for `--chart MARK` (layered specs: let the magic pick). */
export function chartMark(spec: Record<string, unknown> | null): string | null {
  if (!spec) {
    return null;
  }
  const mark = spec.mark as string | { type?: string } | undefined;
  if (typeof mark === 'string') {
    return mark;
  }
  if (mark && typeof mark.type === 'string') {
    return mark.type;
  }
  return 'auto';
}
