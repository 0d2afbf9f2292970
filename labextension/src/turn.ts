/**
 * A chat turn folded from its events: what the message list shows. The same folding
 * as the Python `TurnRecord`, so a live turn and a stored one look alike.
 */

import {
  ChatEvent,
  IErrorInfo,
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
  verified: boolean;
  table: ITableData | null;
  chart: Record<string, unknown> | null;
  error: IErrorInfo | null;
  suggestions: string[];
  /** Still streaming. */
  running: boolean;
  /** Stopped by the user. */
  stopped: boolean;
}

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
    stopped: false
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
