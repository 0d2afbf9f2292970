/**
 * The sidebar's state: threads, the open thread's turns, connections, models, the
 * running turns. Plain TypeScript with one `changed` signal; React components
 * re-render on it. Everything comes from (and goes to) the REST + SSE API.
 */

import { ISignal, Signal } from '@lumino/signaling';

import { AigisAPI, AigisError } from './api';
import {
  applyEvent,
  canVerify,
  ITurn,
  newTurn,
  questionKey,
  turnsFromMessages,
  verifyState,
  VerifyState
} from './turn';
import {
  IConnectionBody,
  IConnectionInfo,
  IConnectionTest,
  IErrorInfo,
  IExample,
  IModelEntry,
  IThreadInfo
} from './types';

/** What survives a page reload (in JupyterLab's state database). */
export interface ISidebarState {
  threadId: string | null;
  connectionId: string | null;
}

export type View = 'chat' | 'connections';

/** Seconds between looks at a thread whose turn runs elsewhere (another tab, a kernel). */
const POLL_RUNNING_MS = 2000;

let localKeys = 0;

export class ChatModel {
  constructor(readonly api: AigisAPI = new AigisAPI()) {}

  // -- state ---------------------------------------------------------------------------

  threads: IThreadInfo[] = [];
  threadId: string | null = null;
  connections: IConnectionInfo[] = [];
  models: IModelEntry[] = [];
  /** The open thread's model (null: "No model selected"). */
  threadModel: string | null = null;
  /** The connection the user picked last: new threads start with it. */
  lastConnectionId: string | null = null;
  view: View = 'chat';
  /** A problem loading the panel itself (the server extension missing, say). */
  loadError: IErrorInfo | null = null;
  loading = true;
  /** Asks the UI to open a picker (an error's "Pick a model" button). */
  openPicker: 'model' | 'connection' | null = null;
  /** The connection manager opens on its "add" form. */
  addConnectionRequested = false;
  /**
   * Verified queries by connection id, for the connections whose threads were opened
   * (they show a turn saved earlier as "Verified"). Reloaded with the panel.
   */
  examples = new Map<string, IExample[]>();

  private _turns = new Map<string, ITurn[]>();
  private _running = new Map<string, AbortController>();
  private _changed = new Signal<this, void>(this);
  private _stateChanged = new Signal<this, ISidebarState>(this);
  private _poll: ReturnType<typeof setTimeout> | null = null;
  /** Counts `selectThread` calls: only the latest one applies what it fetched. */
  private _selection = 0;
  private _disposed = false;

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Emits what should be saved whenever the open thread or picked connection change. */
  get stateChanged(): ISignal<this, ISidebarState> {
    return this._stateChanged;
  }

  get thread(): IThreadInfo | null {
    return this.threads.find(t => t.id === this.threadId) ?? null;
  }

  get turns(): ITurn[] {
    return (this.threadId && this._turns.get(this.threadId)) || [];
  }

  /** Is a turn of the open thread streaming into this panel? */
  get running(): boolean {
    return this.threadId !== null && this._running.has(this.threadId);
  }

  isRunning(threadId: string): boolean {
    return this._running.has(threadId);
  }

  get state(): ISidebarState {
    return { threadId: this.threadId, connectionId: this.lastConnectionId };
  }

  dispose(): void {
    this._disposed = true;
    for (const c of this._running.values()) {
      c.abort();
    }
    if (this._poll) {
      clearTimeout(this._poll);
    }
    Signal.clearData(this);
  }

  private _emit(): void {
    if (!this._disposed) {
      this._changed.emit();
    }
  }

  private _saveState(): void {
    this._stateChanged.emit(this.state);
  }

  // -- loading -------------------------------------------------------------------------

  /** Load everything; reopen the thread of the last session when it still exists. */
  async load(restored?: Partial<ISidebarState>): Promise<void> {
    this.loading = true;
    this._emit();
    try {
      const [threads, connections, models] = await Promise.all([
        this.api.listThreads(),
        this.api.listConnections(),
        this.api.listModels()
      ]);
      this.threads = threads;
      this.connections = connections;
      this.models = models;
      this.examples.clear();
      this.loadError = null;
      if (restored?.connectionId && connections.some(c => c.id === restored.connectionId)) {
        this.lastConnectionId = restored.connectionId;
      }
      const wanted = restored?.threadId ?? this.threadId;
      const open = threads.find(t => t.id === wanted) ?? threads[0] ?? null;
      this.loading = false;
      if (open) {
        await this.selectThread(open.id);
      } else {
        this.threadId = null;
        this._emit();
      }
    } catch (err) {
      this.loading = false;
      this.loadError = errorInfo(err);
      this._emit();
    }
  }

  async refreshThreads(): Promise<void> {
    this.threads = await this.api.listThreads();
    this._emit();
  }

  async refreshConnections(): Promise<void> {
    this.connections = await this.api.listConnections();
    this._emit();
  }

  async refreshModels(): Promise<void> {
    this.models = await this.api.listModels();
    this._emit();
  }

  // -- threads -------------------------------------------------------------------------

  async selectThread(id: string): Promise<void> {
    const selection = ++this._selection;
    this.threadId = id;
    this.threadModel = this.thread?.model_name ?? null;
    this.view = 'chat';
    this._saveState();
    this._emit();
    void this.loadExamples(this.thread?.connection_id ?? null);
    if (this._running.has(id)) {
      return; // its live turns are here already
    }
    try {
      const [messages, model] = await Promise.all([
        this.api.getMessages(id),
        this.api.getThreadModel(id)
      ]);
      if (selection !== this._selection) {
        return; // a later selection (of this thread too) applies its own answer
      }
      this._turns.set(id, turnsFromMessages(messages));
      this.threadModel = model.model;
      if (model.models?.length) {
        this.models = model.models;
      }
    } catch (err) {
      if (selection !== this._selection) {
        return; // a stale failure must not replace turns a later selection loaded
      }
      this._turns.set(id, [errorTurn(err)]);
    }
    this._emit();
    this._watchRunningElsewhere();
  }

  /** A thread whose turn runs elsewhere shows it when it ends. */
  private _watchRunningElsewhere(): void {
    if (this._poll) {
      clearTimeout(this._poll);
      this._poll = null;
    }
    const t = this.thread;
    if (!t || !t.running || this._running.has(t.id)) {
      return;
    }
    this._poll = setTimeout(async () => {
      this._poll = null;
      try {
        await this.refreshThreads();
      } catch {
        return;
      }
      const now = this.thread;
      if (now && now.id === t.id && !now.running) {
        await this.selectThread(now.id);
      } else {
        this._watchRunningElsewhere();
      }
    }, POLL_RUNNING_MS);
  }

  async newThread(): Promise<IThreadInfo> {
    const connection =
      this.lastConnectionId && this.connections.some(c => c.id === this.lastConnectionId)
        ? this.lastConnectionId
        : this.connections.length === 1
          ? this.connections[0].id
          : null;
    const selection = this._selection;
    const thread = await this.api.createThread({ connection });
    this.threads = [thread, ...this.threads.filter(t => t.id !== thread.id)];
    this._turns.set(thread.id, []);
    if (selection === this._selection) {
      await this.selectThread(thread.id);
    } else {
      this._emit(); // a thread opened while this one was created stays open: listed only
    }
    return thread;
  }

  async renameThread(id: string, title: string): Promise<void> {
    const renamed = await this.api.renameThread(id, title);
    this.threads = this.threads.map(t => (t.id === id ? { ...t, ...renamed } : t));
    this._emit();
  }

  async deleteThread(id: string): Promise<void> {
    this._running.get(id)?.abort();
    await this.api.deleteThread(id);
    this._turns.delete(id);
    this.threads = this.threads.filter(t => t.id !== id);
    if (this.threadId === id) {
      this.threadId = null;
      const next = this.threads[0];
      if (next) {
        await this.selectThread(next.id);
        return;
      }
      this._saveState();
    }
    this._emit();
  }

  private _updateThread(info: IThreadInfo): void {
    this.threads = this.threads.map(t => (t.id === info.id ? { ...t, ...info } : t));
  }

  async setConnection(connectionId: string | null): Promise<void> {
    const id = this.threadId;
    if (!id) {
      return;
    }
    const info = await this.api.setThreadConnection(id, connectionId);
    this._updateThread(info);
    if (connectionId) {
      this.lastConnectionId = connectionId;
      this._saveState();
    }
    this._emit();
    void this.loadExamples(connectionId);
  }

  async setModel(name: string | null): Promise<void> {
    const id = this.threadId;
    if (!id) {
      return;
    }
    const model = await this.api.setThreadModel(id, name);
    if (this.threadId === id) {
      this.threadModel = model.model; // not when another thread was opened meanwhile
    }
    if (model.models?.length) {
      this.models = model.models;
    }
    this.threads = this.threads.map(t =>
      t.id === id ? { ...t, model_name: model.model } : t
    );
    this._emit();
  }

  requestPicker(which: 'model' | 'connection' | null): void {
    this.openPicker = which;
    this._emit();
  }

  setView(view: View, addConnection = false): void {
    this.view = view;
    this.addConnectionRequested = addConnection;
    this._emit();
  }

  // -- a chat turn ---------------------------------------------------------------------

  /** Ask the open thread (a new thread when none is open). */
  async send(text: string): Promise<void> {
    text = text.trim();
    if (!text) {
      return;
    }
    let id = this.threadId;
    if (!id) {
      id = (await this.newThread()).id;
    }
    if (this._running.has(id)) {
      return;
    }
    const controller = new AbortController();
    this._running.set(id, controller);
    const key = `live${++localKeys}`;
    const list = [...(this._turns.get(id) ?? []), newTurn(key, text)];
    this._turns.set(id, list);
    this._emit();
    const update = (fn: (t: ITurn) => ITurn) => {
      const turns = this._turns.get(id!) ?? [];
      this._turns.set(
        id!,
        turns.map(t => (t.key === key ? fn(t) : t))
      );
      this._emit();
    };
    try {
      for await (const event of this.api.chat(id, text, { signal: controller.signal })) {
        update(t => applyEvent(t, event));
      }
    } catch (err) {
      update(t => ({ ...t, running: false, phase: null, error: errorInfo(err) }));
    } finally {
      this._running.delete(id);
      update(t => ({ ...t, running: false, phase: null }));
    }
    // the first question names the thread; the server's list is the truth
    try {
      await this.refreshThreads();
    } catch {
      // the turn is shown; a stale title is harmless
    }
  }

  /** Stop the open thread's turn (its SQL too): the server ends the stream. */
  async stop(threadId: string | null = this.threadId): Promise<void> {
    if (!threadId) {
      return;
    }
    const controller = this._running.get(threadId);
    this._turns.set(
      threadId,
      (this._turns.get(threadId) ?? []).map(t =>
        t.running ? { ...t, stopped: true } : t
      )
    );
    this._emit();
    try {
      await this.api.cancel(threadId);
    } catch {
      controller?.abort(); // the server cannot be asked: hang up, which cancels too
      return;
    }
    // the stream should end promptly with the cancelled turn; if not, hang up
    if (controller) {
      setTimeout(() => {
        if (this._running.get(threadId) === controller) {
          controller.abort();
        }
      }, 10000);
    }
  }

  // -- verified queries ----------------------------------------------------------------

  /**
   * Learn a connection's verified queries once (again with `force`). Only for one of the
   * listed connections; a failure leaves them unknown: the turns still show their button,
   * and saving says what is wrong.
   */
  async loadExamples(connectionId: string | null, force = false): Promise<void> {
    if (
      !connectionId ||
      (!force && this.examples.has(connectionId)) ||
      !this.connections.some(c => c.id === connectionId)
    ) {
      return;
    }
    try {
      this.examples.set(connectionId, await this.api.listExamples(connectionId));
    } catch {
      return;
    }
    this._emit();
  }

  /** The "Verify" button's state of a turn of the open thread. */
  verifyStateOf(turn: ITurn): VerifyState {
    const connectionId = this.thread?.connection_id ?? null;
    return verifyState(
      turn,
      connectionId,
      (connectionId && this.examples.get(connectionId)) || []
    );
  }

  /**
   * Save a turn of the open thread (its question and SQL) as a verified query of the
   * thread's connection. Never throws: a refusal (a connection only shared with you, SQL
   * that is not a read query) stays on the turn, in the server's words, as `verifyError`.
   */
  async verifyTurn(key: string): Promise<void> {
    const threadId = this.threadId;
    const turn = this.turns.find(t => t.key === key);
    if (!threadId || !turn || !canVerify(turn) || turn.verifying) {
      return;
    }
    const update = (patch: Partial<ITurn>) => {
      this._turns.set(
        threadId,
        (this._turns.get(threadId) ?? []).map(t => (t.key === key ? { ...t, ...patch } : t))
      );
      this._emit();
    };
    const connectionId = this.thread?.connection_id ?? null;
    if (!connectionId) {
      update({
        verifyError: {
          message: 'This thread has no connection to save the query on. Pick one first.',
          reason: 'no_connection'
        }
      });
      return;
    }
    update({ verifying: true, verifyError: null });
    try {
      const example = await this.api.addExample(connectionId, {
        question: turn.question,
        sql: turn.sql!
      });
      this._rememberExample(connectionId, example);
      update({ verifying: false, savedOn: connectionId });
    } catch (err) {
      update({ verifying: false, verifyError: errorInfo(err) });
    }
  }

  /** A saved example replaces the one of its id or question in the cache. */
  private _rememberExample(connectionId: string, example: IExample): void {
    const known = this.examples.get(connectionId);
    if (!known) {
      return; // not loaded: the turn's `savedOn` marks it
    }
    const key = questionKey(example.question);
    this.examples.set(connectionId, [
      ...known.filter(e => e.id !== example.id && questionKey(e.question) !== key),
      example
    ]);
  }

  // -- connections ---------------------------------------------------------------------

  /** Create (id null) or change a connection; `test`: save only if it answers. */
  async saveConnection(
    id: string | null,
    body: IConnectionBody,
    test = false
  ): Promise<IConnectionInfo> {
    const saved = id
      ? await this.api.updateConnection(id, body, test)
      : await this.api.createConnection(body, test);
    await this.refreshConnections();
    try {
      await this.refreshThreads(); // connection names shown in the thread list
    } catch {
      // shown on the next refresh
    }
    return saved;
  }

  testConnection(id: string): Promise<IConnectionTest> {
    return this.api.testConnection(id);
  }

  async deleteConnection(id: string): Promise<void> {
    await this.api.deleteConnection(id);
    this.examples.delete(id);
    if (this.lastConnectionId === id) {
      this.lastConnectionId = null;
      this._saveState();
    }
    await this.refreshConnections();
    await this.refreshThreads();
  }
}

export function errorInfo(err: unknown): IErrorInfo {
  if (err instanceof AigisError) {
    return err.toInfo();
  }
  return { message: (err as Error)?.message || String(err), reason: 'error' };
}

function errorTurn(err: unknown): ITurn {
  return { ...newTurn(`e${++localKeys}`, ''), running: false, error: errorInfo(err) };
}
