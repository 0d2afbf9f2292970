/** Test helpers: byte streams and a fake Jupyter server behind `ServerConnection`. */

import { ServerConnection } from '@jupyterlab/services';
// Node's web streams: the ones its `Response` (the test environment's fetch) reads.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { ReadableStream: NodeReadableStream } = require('stream/web');

export const BASE = 'http://localhost:8888/lab-base/';

/** A byte stream of these chunks; `fail` errors it after them (a dropped connection). */
export function streamOf(
  chunks: Uint8Array[],
  options: { fail?: Error; hang?: boolean } = {}
): ReadableStream<Uint8Array> {
  let i = 0;
  return new NodeReadableStream({
    pull(controller: any) {
      if (i < chunks.length) {
        controller.enqueue(chunks[i++]);
      } else if (options.fail) {
        controller.error(options.fail);
      } else if (!options.hang) {
        controller.close();
      }
    }
  }) as ReadableStream<Uint8Array>;
}

export function textStream(texts: string[], options: { fail?: Error } = {}) {
  const enc = new TextEncoder();
  return streamOf(
    texts.map(t => enc.encode(t)),
    options
  );
}

export interface ISeen {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

export type Handler = (req: ISeen) => Response | Promise<Response>;

/** `ServerConnection` settings whose fetch answers with `handler` and records requests. */
export function fakeServer(handler: Handler): {
  settings: ServerConnection.ISettings;
  seen: ISeen[];
} {
  const seen: ISeen[] = [];
  const fetch = async (input: RequestInfo): Promise<Response> => {
    const req = input as Request;
    const headers: Record<string, string> = {};
    req.headers.forEach((v, k) => (headers[k] = v));
    const s: ISeen = {
      method: req.method,
      // ServerConnection's default `cache: 'no-store'` appends a timestamp: not ours to check
      url: req.url.replace(/[?&]\d{10,}$/, ''),
      headers,
      body: req.body ? await req.text() : ''
    };
    seen.push(s);
    return handler(s);
  };
  const settings = ServerConnection.makeSettings({
    baseUrl: BASE,
    token: 'secret-token',
    fetch: fetch as any
  });
  return { settings, seen };
}

export function json(body: unknown, status = 200): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' }
  });
}

export function sse(texts: string[], options: { fail?: Error } = {}): Response {
  return new Response(textStream(texts, options) as any, {
    status: 200,
    headers: { 'Content-Type': 'text/event-stream; charset=utf-8' }
  });
}
