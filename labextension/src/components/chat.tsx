/**
 * The chat view: the thread list, the open thread's connection and model, its turns,
 * and the question box (Enter sends, Shift+Enter breaks the line, Escape stops).
 */

import { Dialog, showDialog } from '@jupyterlab/apputils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import {
  addIcon,
  caretDownIcon,
  caretRightIcon,
  deleteIcon,
  editIcon,
  refreshIcon,
  runIcon,
  stopIcon
} from '@jupyterlab/ui-components';
import React, { useEffect, useRef, useState } from 'react';

import { databaseIcon } from '../icons';
import { ChatModel, errorInfo } from '../model';
import { ITurn } from '../turn';
import { IErrorInfo, IModelEntry, IThreadInfo } from '../types';
import { Boundary, IconButton, TextButton, useSignal } from './common';
import { ConnectionManager } from './connections';
import { Picker } from './picker';
import { ErrorView, TurnView } from './turnview';

export interface IChatProps {
  model: ChatModel;
  rendermime: IRenderMimeRegistry;
  onInsert: (turn: ITurn, thread: IThreadInfo) => Promise<void>;
}

export function Chat(props: IChatProps): JSX.Element {
  const { model } = props;
  useSignal(model.changed);
  const [problem, setProblem] = useState<IErrorInfo | null>(null);

  /** Run an action; a failure shows in the panel instead of vanishing. */
  const attempt = (fn: () => Promise<unknown>) => {
    setProblem(null);
    fn().catch(err => setProblem(errorInfo(err)));
  };

  return (
    <div
      className="jp-AigisChat-root"
      onKeyDown={e => {
        if (e.key === 'Escape' && model.running && !e.defaultPrevented) {
          e.preventDefault();
          void model.stop();
        }
      }}
    >
      <div className="jp-AigisChat-toolbar" role="toolbar" aria-label="Aigis chat">
        <span className="jp-AigisChat-title">Aigis</span>
        <span className="jp-AigisChat-spacer" />
        <IconButton icon={addIcon} label="New chat" onClick={() => attempt(() => model.newThread())} />
        <IconButton
          icon={databaseIcon}
          label="Manage connections"
          aria-pressed={model.view === 'connections'}
          onClick={() => model.setView(model.view === 'connections' ? 'chat' : 'connections')}
        />
        <IconButton
          icon={refreshIcon}
          label="Reload threads, connections and models"
          onClick={() => attempt(() => model.load(model.state))}
        />
      </div>
      {problem && (
        <div className="jp-AigisChat-banner">
          <ErrorView error={problem} model={model} />
        </div>
      )}
      {model.loadError ? (
        <div className="jp-AigisChat-banner">
          <ErrorView error={model.loadError} model={model} />
          <p className="jp-AigisChat-hint">
            The sidebar talks to the aigis-jupyter server extension; check that it is enabled
            (<code>jupyter server extension list</code>).
          </p>
          <TextButton accept onClick={() => void model.load(model.state)}>
            Try again
          </TextButton>
        </div>
      ) : model.view === 'connections' ? (
        <Boundary what="connection manager">
          <ConnectionManager model={model} />
        </Boundary>
      ) : (
        <>
          <ThreadList model={model} attempt={attempt} />
          <ThreadBar model={model} attempt={attempt} />
          <Messages {...props} />
          <Composer model={model} />
        </>
      )}
    </div>
  );
}

function ThreadList(props: {
  model: ChatModel;
  attempt: (fn: () => Promise<unknown>) => void;
}): JSX.Element {
  const { model, attempt } = props;
  const [expanded, setExpanded] = useState(true);
  const [renaming, setRenaming] = useState<string | null>(null);
  const [title, setTitle] = useState('');

  const remove = async (t: IThreadInfo) => {
    const answer = await showDialog({
      title: 'Delete chat',
      body: `Delete "${threadTitle(t)}" and all its messages?`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (answer.button.accept) {
      attempt(() => model.deleteThread(t.id));
    }
  };

  const Caret = expanded ? caretDownIcon : caretRightIcon;
  return (
    <section className="jp-AigisChat-threads" aria-label="Threads">
      <button
        type="button"
        className="jp-AigisChat-sectionToggle"
        aria-expanded={expanded}
        aria-controls="aigis-thread-list"
        onClick={() => setExpanded(!expanded)}
      >
        <Caret.react tag="span" className="jp-AigisChat-buttonIcon" />
        Threads ({model.threads.length})
      </button>
      {expanded && (
        <ul id="aigis-thread-list" className="jp-AigisChat-threadList" aria-label="Thread list">
          {model.threads.map(t => (
            <li
              key={t.id}
              className={`jp-AigisChat-thread${t.id === model.threadId ? ' jp-mod-selected' : ''}`}
            >
              {renaming === t.id ? (
                <input
                  className="jp-mod-styled jp-AigisChat-input"
                  aria-label="New name of the thread"
                  autoFocus
                  value={title}
                  onChange={e => setTitle(e.target.value)}
                  onKeyDown={e => {
                    if (e.key === 'Enter') {
                      e.preventDefault();
                      setRenaming(null);
                      attempt(() => model.renameThread(t.id, title.trim()));
                    } else if (e.key === 'Escape') {
                      e.preventDefault();
                      e.stopPropagation();
                      setRenaming(null);
                    }
                  }}
                  onBlur={() => setRenaming(null)}
                />
              ) : (
                <button
                  type="button"
                  className="jp-AigisChat-threadOpen"
                  aria-current={t.id === model.threadId ? 'true' : undefined}
                  aria-label={`Open thread ${threadTitle(t)}`}
                  onClick={() => attempt(() => model.selectThread(t.id))}
                >
                  <span className="jp-AigisChat-threadTitle">{threadTitle(t)}</span>
                  <span className="jp-AigisChat-threadMeta">
                    {t.connection_name ?? 'no connection'} · {t.model_name ?? 'no model'}
                    {(t.running || model.isRunning(t.id)) && ' · running'}
                  </span>
                </button>
              )}
              <IconButton
                icon={editIcon}
                label={`Rename thread ${threadTitle(t)}`}
                onClick={() => {
                  setTitle(t.title ?? '');
                  setRenaming(t.id);
                }}
              />
              <IconButton
                icon={deleteIcon}
                label={`Delete thread ${threadTitle(t)}`}
                onClick={() => void remove(t)}
              />
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

export function threadTitle(t: IThreadInfo): string {
  return t.title || 'New chat';
}

function ThreadBar(props: {
  model: ChatModel;
  attempt: (fn: () => Promise<unknown>) => void;
}): JSX.Element | null {
  const { model, attempt } = props;
  const thread = model.thread;
  if (!thread) {
    return null;
  }
  const picked = model.connections.find(c => c.id === thread.connection_id);
  const connectionName = picked?.name ?? thread.connection_name;
  const modelEntry = model.models.find(m => m.name === model.threadModel);
  return (
    <div className="jp-AigisChat-threadBar" aria-label="Thread settings" role="group">
      <Picker
        label="Connection"
        current={connectionName ?? <span className="jp-AigisChat-missing">None</span>}
        currentText={connectionName ?? 'none'}
        options={[
          ...model.connections.map(c => ({
            value: c.id,
            label: c.name,
            detail: `${c.db_type}${c.db_type === 'sqlite' ? '' : c.host ? ' · ' + c.host : ''}${c.database ? ' · ' + c.database : ''}`
          })),
          { value: null, label: 'No connection', detail: 'Questions need one' }
        ]}
        selected={thread.connection_id}
        open={model.openPicker === 'connection'}
        onOpenChange={open => model.requestPicker(open ? 'connection' : null)}
        onPick={value => attempt(() => model.setConnection(value))}
        footer={
          <button
            type="button"
            className="jp-AigisChat-link"
            onClick={() => {
              model.requestPicker(null);
              model.setView('connections', model.connections.length === 0);
            }}
          >
            Manage connections…
          </button>
        }
      />
      <Picker
        label="Model"
        current={
          model.threadModel ? (
            model.threadModel
          ) : (
            <span className="jp-AigisChat-noModel">No model selected</span>
          )
        }
        currentText={model.threadModel ?? 'No model selected'}
        buttonClassName={model.threadModel ? '' : 'jp-mod-missing'}
        options={byAvailability(model.models).map(m => ({
          value: m.name,
          label: m.name,
          detail: [m.provider, m.aliases.length ? `aliases: ${m.aliases.join(', ')}` : '']
            .filter(Boolean)
            .join(' · '),
          disabled: !m.available,
          hint: m.available ? undefined : `Unavailable: ${m.reason ?? 'not enabled here'}`
        }))}
        selected={model.threadModel}
        open={model.openPicker === 'model'}
        onOpenChange={open => model.requestPicker(open ? 'model' : null)}
        onPick={value => attempt(() => model.setModel(value))}
      />
      {modelEntry && !modelEntry.available && (
        <div className="jp-AigisChat-error" role="alert">
          {modelEntry.name} is not available: {modelEntry.reason}
        </div>
      )}
    </div>
  );
}

/** Models that can be picked first, then the others with how to enable them. */
function byAvailability(models: IModelEntry[]): IModelEntry[] {
  return [...models.filter(m => m.available), ...models.filter(m => !m.available)];
}

function Messages(props: IChatProps): JSX.Element {
  const { model, rendermime } = props;
  const end = useRef<HTMLDivElement>(null);
  const box = useRef<HTMLDivElement>(null);
  const turns = model.turns;
  const thread = model.thread;
  const last = turns[turns.length - 1];

  // open a thread at its end; then follow the stream while the reader is at the bottom
  const shown = useRef<{ thread: string | null; count: number }>({ thread: null, count: 0 });
  useEffect(() => {
    const el = box.current;
    if (!el) {
      return;
    }
    const opened = shown.current.thread !== model.threadId || shown.current.count === 0;
    shown.current = { thread: model.threadId, count: turns.length };
    const nearBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 120;
    if (opened || nearBottom || last?.running) {
      end.current?.scrollIntoView({ block: 'end' });
    }
  }, [turns.length, last?.answer, last?.table, last?.chart, last?.phase, model.threadId]);

  if (model.loading) {
    return <div className="jp-AigisChat-messages jp-AigisChat-empty">Loading…</div>;
  }
  if (!thread) {
    return (
      <div className="jp-AigisChat-messages jp-AigisChat-empty">
        <p>Ask your databases questions in plain language.</p>
        {model.connections.length === 0 ? (
          <TextButton accept onClick={() => model.setView('connections', true)}>
            Add a connection
          </TextButton>
        ) : (
          <TextButton accept onClick={() => void model.newThread()}>
            Start a chat
          </TextButton>
        )}
      </div>
    );
  }
  return (
    <div
      className="jp-AigisChat-messages"
      ref={box}
      role="log"
      aria-label="Messages"
      aria-busy={model.running}
    >
      {turns.length === 0 && (
        <p className="jp-AigisChat-empty">
          {thread.connection_id
            ? `Ask a question about ${thread.connection_name ?? 'your data'}.`
            : 'Pick a connection, then ask a question.'}
        </p>
      )}
      {turns.map(t => (
        <Boundary key={t.key} what="message">
          <TurnView
            turn={t}
            model={model}
            rendermime={rendermime}
            canInsert={Boolean(thread.connection_id)}
            onInsert={turn => props.onInsert(turn, thread)}
          />
        </Boundary>
      ))}
      <div ref={end} />
    </div>
  );
}

function Composer(props: { model: ChatModel }): JSX.Element {
  const { model } = props;
  const [text, setText] = useState('');
  const input = useRef<HTMLTextAreaElement>(null);
  const running = model.running;

  const send = () => {
    if (!text.trim() || running) {
      return;
    }
    const question = text;
    setText('');
    void model.send(question);
    input.current?.focus();
  };

  return (
    <div className="jp-AigisChat-composer">
      <textarea
        ref={input}
        className="jp-mod-styled jp-AigisChat-textarea"
        aria-label="Question"
        placeholder={running ? 'Answering… Escape stops it' : 'Ask a question about your data'}
        title="Enter sends, Shift+Enter starts a new line, Escape stops a running answer"
        rows={2}
        value={text}
        onChange={e => setText(e.target.value)}
        onKeyDown={e => {
          if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
            e.preventDefault();
            send();
          }
        }}
      />
      {running ? (
        <IconButton
          icon={stopIcon}
          label="Stop"
          text="Stop"
          className="jp-AigisChat-stop"
          onClick={() => void model.stop()}
        />
      ) : (
        <IconButton
          icon={runIcon}
          label="Send"
          text="Send"
          className="jp-AigisChat-send"
          disabled={!text.trim()}
          onClick={send}
        />
      )}
    </div>
  );
}
