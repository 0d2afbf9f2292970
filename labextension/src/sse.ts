/**
 * An incremental Server-Sent Events parser (the WHATWG "event stream" format).
 *
 * `EventSource` only does GET, and a chat turn is a POST with a JSON body, so the
 * response body is read as a stream and parsed here, chunk by chunk: a frame may be
 * split across network chunks (even inside a UTF-8 character or a CRLF), and one
 * chunk may carry several frames.
 */

/** One dispatched frame. */
export interface ISSEFrame {
  /** The `event:` field, "message" when absent. */
  event: string;
  /** The `data:` lines, joined with "\n". */
  data: string;
  /** The last `id:` seen on this stream (it carries over, as in the spec). */
  id: string;
}

/** Comment lines (`: keep-alive`) are reported too, so a reader can tell the server lives. */
export interface ISSEComment {
  comment: string;
}

export type SSEItem = ISSEFrame | ISSEComment;

export function isComment(item: SSEItem): item is ISSEComment {
  return (item as ISSEComment).comment !== undefined;
}

/**
 * Feed it text as it arrives; it returns the frames and comments completed so far.
 */
export class SSEParser {
  /** Text after the last complete line. */
  private _buffer = '';
  /** The previous chunk ended in "\r": a "\n" starting the next one belongs to it. */
  private _pendingCR = false;
  private _data: string[] = [];
  private _event = '';
  private _id = '';
  private _hasField = false;

  /** The last event id, for a client that wants to report where a stream stopped. */
  get lastEventId(): string {
    return this._id;
  }

  feed(text: string): SSEItem[] {
    if (this._pendingCR && text.startsWith('\n')) {
      text = text.slice(1);
    }
    this._pendingCR = false;
    const out: SSEItem[] = [];
    let buf = this._buffer + text;
    let start = 0;
    for (let i = 0; i < buf.length; i++) {
      const c = buf[i];
      if (c !== '\n' && c !== '\r') {
        continue;
      }
      this._line(buf.slice(start, i), out);
      if (c === '\r') {
        if (i + 1 === buf.length) {
          this._pendingCR = true;
        } else if (buf[i + 1] === '\n') {
          i++;
        }
      }
      start = i + 1;
    }
    buf = buf.slice(start);
    this._buffer = buf;
    return out;
  }

  /**
   * The stream ended. Per the spec an unterminated last frame is dropped; it is
   * returned here (as `incomplete`) so the caller can say that the stream was cut.
   */
  end(): { incomplete: boolean } {
    const incomplete = this._buffer.length > 0 || this._hasField;
    this._buffer = '';
    this._data = [];
    this._event = '';
    this._hasField = false;
    return { incomplete };
  }

  private _line(line: string, out: SSEItem[]): void {
    if (line === '') {
      this._dispatch(out);
      return;
    }
    if (line.startsWith(':')) {
      out.push({ comment: line.slice(1).replace(/^ /, '') });
      return;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) {
      value = value.slice(1);
    }
    switch (field) {
      case 'data':
        this._data.push(value);
        this._hasField = true;
        break;
      case 'event':
        this._event = value;
        this._hasField = true;
        break;
      case 'id':
        if (!value.includes('\0')) {
          this._id = value;
        }
        break;
      default:
        // `retry` and unknown fields: nothing to do for a one-shot POST stream.
        break;
    }
  }

  private _dispatch(out: SSEItem[]): void {
    if (this._data.length) {
      out.push({
        event: this._event || 'message',
        data: this._data.join('\n'),
        id: this._id
      });
    }
    this._data = [];
    this._event = '';
    this._hasField = false;
  }
}

/**
 * Read a byte stream as SSE: yields frames and comments as they complete. The last
 * item, when the stream was cut mid-frame, is `{incomplete: true}`.
 */
export async function* readSSE(
  body: ReadableStream<Uint8Array>
): AsyncGenerator<SSEItem | { incomplete: true }> {
  const reader = body.getReader();
  const decoder = new TextDecoder('utf-8');
  const parser = new SSEParser();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        break;
      }
      for (const item of parser.feed(decoder.decode(value, { stream: true }))) {
        yield item;
      }
    }
    for (const item of parser.feed(decoder.decode())) {
      yield item;
    }
    if (parser.end().incomplete) {
      yield { incomplete: true };
    }
  } finally {
    reader.releaseLock();
  }
}
