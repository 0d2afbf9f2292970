/**
 * The JSON shapes of the server extension's REST + SSE API, as
 * `aigis_jupyter/service/contract.py` defines them (the OpenAPI document at
 * `{base_url}aigis/openapi.json` is generated from the same types).
 */

/** A next step a door renders in its own terms (a button, here). */
export interface IAction {
  kind: string;
  choices?: string[];
  name?: string;
}

/** Every error of the API: `{message, reason, action?}` with an HTTP status. */
export interface IErrorInfo {
  message: string;
  reason?: string;
  action?: IAction | null;
}

export type DbType = 'postgres' | 'mysql' | 'sqlite';

/** A connection as the server shows it: never the password, only whether one is set. */
export interface IConnectionInfo {
  id: string;
  name: string;
  db_type: DbType | string;
  host: string | null;
  port: number | null;
  database: string | null;
  username: string | null;
  has_password: boolean;
  allow_write: boolean;
  options: Record<string, string>;
  /**
   * What the assistant should know about this data (business terms, rules): it enters
   * every SQL prompt on this connection. Null (or absent, from an older server): none.
   */
  notes?: string | null;
  /** Shared with you by its owner: usable, its login details hidden, not yours to change. */
  shared?: boolean;
  created_at: string | null;
  updated_at: string | null;
  /** Things to fix although it works (a privileged login, say). */
  warnings?: INotice[];
}

export interface INotice {
  kind: string;
  message: string;
  action?: IAction;
}

/** What the connection form sends; `password` null keeps it, "" removes it. */
export interface IConnectionBody {
  name?: string;
  db_type?: DbType;
  host?: string | null;
  port?: number | string | null;
  database?: string | null;
  username?: string | null;
  password?: string | null;
  allow_write?: boolean | null;
  /** At most `NOTES_MAX` characters; null or "" removes them. */
  notes?: string | null;
}

/** The most characters a connection's notes may have (the server refuses more). */
export const NOTES_MAX = 4000;

/** A verified query: a question and the SQL a person confirmed answers it, on one connection. */
export interface IExample {
  id: string;
  connection_id: string;
  question: string;
  sql: string;
  created_at: string | null;
  updated_at: string | null;
}

/** What adding (or changing) a verified query sends. */
export interface IExampleBody {
  question?: string;
  sql?: string;
}

export interface IConnectionTest {
  ok: boolean;
  db_type: string;
  server_version: string;
  latency_ms: number;
}

export interface IThreadInfo {
  id: string;
  title: string | null;
  connection_id: string | null;
  connection_name: string | null;
  model_name: string | null;
  created_at: string | null;
  updated_at: string | null;
  running: boolean;
}

export interface ITableData {
  columns: string[];
  rows: unknown[][];
  row_count: number;
  truncated: boolean;
}

/** What an assistant message stores beside its text (`TurnRecord.payload`). */
export interface IMessagePayload {
  sql?: string;
  verified?: boolean;
  table?: ITableData;
  chart?: Record<string, unknown>;
  error?: IErrorInfo;
  suggestions?: string[];
  [key: string]: unknown;
}

export interface IMessageInfo {
  id: number;
  thread_id: string;
  role: 'user' | 'assistant' | string;
  content: string;
  payload: IMessagePayload | null;
  created_at: string | null;
}

export interface IModelEntry {
  name: string;
  provider: string | null;
  aliases: string[];
  available: boolean;
  reason: string | null;
  supports_tools: boolean | null;
  action: IAction | null;
}

export interface IThreadModel {
  thread_id: string;
  model: string | null;
  models: IModelEntry[];
  available: Record<string, boolean>;
}

export type Phase = 'schema' | 'sql' | 'executing' | 'charting' | 'answering';

/** One event of a chat turn's stream (DESIGN.md, "Event stream"). */
export type ChatEvent =
  | { type: 'status'; phase: Phase }
  | { type: 'sql'; sql: string; verified?: boolean }
  | ({ type: 'table' } & ITableData)
  | { type: 'chart'; spec: Record<string, unknown> }
  | { type: 'tool_result'; content: unknown }
  | { type: 'chunk'; content: string }
  | ({ type: 'error' } & IErrorInfo)
  | { type: 'suggestions'; suggestions: string[] }
  | { type: 'end'; full_response: string };
