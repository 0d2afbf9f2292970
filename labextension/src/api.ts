/**
 * The client of the server extension's REST + SSE API (`{base_url}aigis/`).
 *
 * Every request goes through JupyterLab's `ServerConnection`, so the token, the XSRF
 * header and the base URL are those of the page; the sidebar never talks to anything
 * but its own Jupyter server (which forwards to the hub service in hub mode).
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { isComment, readSSE } from './sse';
import {
  ChatEvent,
  IAction,
  IConnectionBody,
  IConnectionInfo,
  IConnectionTest,
  IErrorInfo,
  IExample,
  IExampleBody,
  IMessageInfo,
  IModelEntry,
  IThreadInfo,
  IThreadModel
} from './types';

/** An API error with what the server said and the structured next step, if any. */
export class AigisError extends Error implements IErrorInfo {
  constructor(
    message: string,
    readonly status: number,
    readonly reason: string = 'error',
    readonly action: IAction | null = null
  ) {
    super(message);
    this.name = 'AigisError';
  }

  toInfo(): IErrorInfo {
    return { message: this.message, reason: this.reason, action: this.action };
  }
}

/** What a cut stream becomes: an `error` event the UI shows like any other. */
export const STREAM_LOST: IErrorInfo = {
  message:
    'The connection to the server was lost before the answer was complete. ' +
    'Ask again; the thread is still usable.',
  reason: 'stream_lost'
};

export interface IStreamOptions {
  /** Aborts the request (the server then cancels the turn). */
  signal?: AbortSignal;
  /** Called for every keep-alive comment. */
  onComment?: (comment: string) => void;
}

export class AigisAPI {
  constructor(
    readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  url(path: string, query?: Record<string, string | number | boolean>): string {
    const base = URLExt.join(this.settings.baseUrl, 'aigis', path);
    if (!query) {
      return base;
    }
    const q = Object.entries(query)
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
      .join('&');
    return q ? `${base}?${q}` : base;
  }

  /** One JSON request; a non-2xx answer throws an `AigisError` with the server's words. */
  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    query?: Record<string, string | number | boolean>
  ): Promise<T> {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'Content-Type': 'application/json' };
    }
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(
        this.url(path, query),
        init,
        this.settings
      );
    } catch (err) {
      throw new AigisError(
        `The Jupyter server did not answer (${(err as Error).message}).`,
        0,
        'network_error'
      );
    }
    if (!response.ok) {
      throw await errorOf(response);
    }
    if (response.status === 204) {
      return undefined as T;
    }
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  // -- connections -------------------------------------------------------------------

  listConnections(): Promise<IConnectionInfo[]> {
    return this.request('GET', 'connections');
  }

  createConnection(body: IConnectionBody, test = false): Promise<IConnectionInfo> {
    return this.request('POST', 'connections', body, test ? { test: true } : undefined);
  }

  updateConnection(
    id: string,
    body: IConnectionBody,
    test = false
  ): Promise<IConnectionInfo> {
    return this.request(
      'PUT',
      `connections/${encodeURIComponent(id)}`,
      body,
      test ? { test: true } : undefined
    );
  }

  deleteConnection(id: string): Promise<void> {
    return this.request('DELETE', `connections/${encodeURIComponent(id)}`);
  }

  testConnection(id: string): Promise<IConnectionTest> {
    return this.request('POST', `connections/${encodeURIComponent(id)}/test`, {});
  }

  // -- verified queries (a connection's examples) -------------------------------------

  /** The verified queries of a connection (also of one shared with you). */
  listExamples(connectionId: string): Promise<IExample[]> {
    return this.request('GET', examplesPath(connectionId));
  }

  /**
   * Save a question and the SQL a person confirmed answers it. The same question again
   * (case and spacing aside) replaces its SQL. Only the connection's owner can: a shared
   * connection answers 403; SQL that is not a read query, 422.
   */
  addExample(connectionId: string, body: { question: string; sql: string }): Promise<IExample> {
    return this.request('POST', examplesPath(connectionId), {
      question: body.question,
      sql: body.sql
    });
  }

  updateExample(connectionId: string, exampleId: string, body: IExampleBody): Promise<IExample> {
    return this.request(
      'PUT',
      `${examplesPath(connectionId)}/${encodeURIComponent(exampleId)}`,
      body
    );
  }

  deleteExample(connectionId: string, exampleId: string): Promise<void> {
    return this.request(
      'DELETE',
      `${examplesPath(connectionId)}/${encodeURIComponent(exampleId)}`
    );
  }

  // -- threads -----------------------------------------------------------------------

  listThreads(): Promise<IThreadInfo[]> {
    return this.request('GET', 'chat/threads');
  }

  async createThread(
    options: { title?: string; connection?: string | null; model?: string | null } = {}
  ): Promise<IThreadInfo> {
    const body: Record<string, string> = {};
    if (options.title) {
      body.title = options.title;
    }
    if (options.connection) {
      body.connection = options.connection;
    }
    if (options.model) {
      body.model = options.model;
    }
    const made = await this.request<IThreadInfo & { thread_id: string }>(
      'POST',
      'chat/thread',
      body
    );
    return { ...made, id: made.id ?? made.thread_id };
  }

  renameThread(id: string, title: string): Promise<IThreadInfo> {
    return this.request('PUT', `chat/${encodeURIComponent(id)}`, { title });
  }

  deleteThread(id: string): Promise<void> {
    return this.request('DELETE', `chat/${encodeURIComponent(id)}`);
  }

  getMessages(id: string): Promise<IMessageInfo[]> {
    return this.request('GET', `chat/${encodeURIComponent(id)}`);
  }

  setThreadConnection(id: string, connection: string | null): Promise<IThreadInfo> {
    return this.request('POST', `chat/${encodeURIComponent(id)}/connection`, {
      user_connection_id: connection
    });
  }

  getThreadModel(id: string): Promise<IThreadModel> {
    return this.request('GET', `chat/${encodeURIComponent(id)}/model`);
  }

  setThreadModel(id: string, name: string | null): Promise<IThreadModel> {
    return this.request('POST', `chat/${encodeURIComponent(id)}/model`, { name });
  }

  async cancel(id: string): Promise<boolean> {
    const r = await this.request<{ cancelled: boolean }>(
      'POST',
      `chat/${encodeURIComponent(id)}/cancel`,
      {}
    );
    return r.cancelled;
  }

  listModels(): Promise<IModelEntry[]> {
    return this.request('GET', 'models');
  }

  // -- the chat turn -----------------------------------------------------------------

  /**
   * Ask a question: yields the turn's events as the server sends them.
   *
   * A refusal before the turn starts (no model, a turn already running) throws an
   * `AigisError`. Once streaming, every ending is an event: the server's `end`, or,
   * when the stream is cut (network, server gone), an `error` event `STREAM_LOST`
   * followed by a synthetic `end`, so the caller always sees a finished turn.
   */
  async *chat(
    threadId: string,
    text: string,
    options: IStreamOptions = {}
  ): AsyncGenerator<ChatEvent> {
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(
        this.url(`chat/${encodeURIComponent(threadId)}/message`),
        {
          method: 'POST',
          body: JSON.stringify({ text }),
          headers: {
            'Content-Type': 'application/json',
            Accept: 'text/event-stream'
          },
          signal: options.signal
        },
        this.settings
      );
    } catch (err) {
      if (options.signal?.aborted) {
        yield { type: 'end', full_response: '' };
        return;
      }
      throw new AigisError(
        `The Jupyter server did not answer (${(err as Error).message}).`,
        0,
        'network_error'
      );
    }
    if (!response.ok) {
      throw await errorOf(response);
    }
    if (!response.body) {
      throw new AigisError('The server sent no stream.', response.status, 'no_stream');
    }
    let ended = false;
    let failed = false;
    try {
      for await (const item of readSSE(response.body)) {
        if ('incomplete' in item) {
          failed = true;
          break;
        }
        if (isComment(item)) {
          options.onComment?.(item.comment);
          continue;
        }
        let event: ChatEvent;
        try {
          event = JSON.parse(item.data) as ChatEvent;
        } catch {
          continue; // not one of ours: ignore, as EventSource ignores unknown events
        }
        yield event;
        if (event.type === 'end') {
          ended = true;
          break;
        }
      }
    } catch {
      failed = !options.signal?.aborted;
    }
    if (!ended) {
      if (failed || !options.signal?.aborted) {
        yield { type: 'error', ...STREAM_LOST };
      }
      yield { type: 'end', full_response: '' };
    }
  }
}

function examplesPath(connectionId: string): string {
  return `connections/${encodeURIComponent(connectionId)}/examples`;
}

/** The server's JSON error as an `AigisError` (any body: proxies answer HTML too). */
export async function errorOf(response: Response): Promise<AigisError> {
  let info: Partial<IErrorInfo> = {};
  try {
    const text = await response.text();
    try {
      info = JSON.parse(text);
    } catch {
      info = { message: text.slice(0, 200) };
    }
  } catch {
    // no body
  }
  const message =
    info.message || `The server answered ${response.status} ${response.statusText}.`;
  return new AigisError(message, response.status, info.reason || 'error', info.action || null);
}
