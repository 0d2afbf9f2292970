/**
 * The connection manager: add, edit, test and delete PostgreSQL, MySQL and SQLite
 * connections. The password is write-only: the form shows whether one is set, never it.
 * A connection's notes (business terms and rules) teach the assistant about its data.
 */

import { showDialog, Dialog } from '@jupyterlab/apputils';
import {
  checkIcon,
  closeIcon,
  deleteIcon,
  editIcon,
  HTMLSelect,
  runIcon
} from '@jupyterlab/ui-components';
import React, { useEffect, useState } from 'react';

import { ChatModel, errorInfo } from '../model';
import {
  DbType,
  IConnectionBody,
  IConnectionInfo,
  IConnectionTest,
  IErrorInfo,
  NOTES_MAX
} from '../types';
import { IconButton, Spinner, TextButton } from './common';

const DB_TYPES: { value: DbType; label: string; port: string }[] = [
  { value: 'postgres', label: 'PostgreSQL', port: '5432' },
  { value: 'mysql', label: 'MySQL / MariaDB', port: '3306' },
  { value: 'sqlite', label: 'SQLite', port: '' }
];

type TestState = { busy: true } | { result: IConnectionTest } | { error: IErrorInfo };

export function ConnectionManager(props: { model: ChatModel }): JSX.Element {
  const { model } = props;
  const [editing, setEditing] = useState<IConnectionInfo | 'new' | null>(
    model.addConnectionRequested ? 'new' : null
  );
  const [tests, setTests] = useState<Record<string, TestState>>({});

  useEffect(() => {
    if (model.addConnectionRequested) {
      setEditing('new');
    }
  }, [model.addConnectionRequested]);

  const test = async (c: IConnectionInfo) => {
    setTests(t => ({ ...t, [c.id]: { busy: true } }));
    try {
      const result = await model.testConnection(c.id);
      setTests(t => ({ ...t, [c.id]: { result } }));
    } catch (err) {
      setTests(t => ({ ...t, [c.id]: { error: errorInfo(err) } }));
    }
  };

  const remove = async (c: IConnectionInfo) => {
    const answer = await showDialog({
      title: 'Delete connection',
      body: `Delete the connection "${c.name}"? Threads that use it keep their messages.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (answer.button.accept) {
      try {
        await model.deleteConnection(c.id);
      } catch (err) {
        setTests(t => ({ ...t, [c.id]: { error: errorInfo(err) } }));
      }
    }
  };

  return (
    <section className="jp-AigisChat-connections" aria-label="Connections">
      <div className="jp-AigisChat-sectionHeader">
        <h3>Connections</h3>
        <IconButton
          icon={closeIcon}
          label="Back to the chat"
          onClick={() => model.setView('chat')}
        />
      </div>
      {editing !== null ? (
        <ConnectionForm
          model={model}
          connection={editing === 'new' ? null : editing}
          onDone={() => setEditing(null)}
        />
      ) : (
        <TextButton accept className="jp-AigisChat-add" onClick={() => setEditing('new')}>
          Add a connection
        </TextButton>
      )}
      {model.connections.length === 0 && editing === null && (
        <p className="jp-AigisChat-empty">
          No connections yet. Add one to ask questions of your database.
        </p>
      )}
      <ul className="jp-AigisChat-connectionList" aria-label="Saved connections">
        {model.connections.map(c => {
          const t = tests[c.id];
          return (
            <li key={c.id} className="jp-AigisChat-connection" aria-label={`Connection ${c.name}`}>
              <div className="jp-AigisChat-connectionMain">
                <div className="jp-AigisChat-connectionName">{c.name}</div>
                <div className="jp-AigisChat-connectionDetail">{describe(c)}</div>
              </div>
              <div className="jp-AigisChat-connectionButtons">
                <IconButton icon={runIcon} label={`Test ${c.name}`} onClick={() => void test(c)} />
                {!c.shared && (
                  <>
                    <IconButton
                      icon={editIcon}
                      label={`Edit ${c.name}`}
                      onClick={() => setEditing(c)}
                    />
                    <IconButton
                      icon={deleteIcon}
                      label={`Delete ${c.name}`}
                      onClick={() => void remove(c)}
                    />
                  </>
                )}
              </div>
              {(c.warnings ?? []).map(w => (
                <div key={w.kind} className="jp-AigisChat-warning" role="note">
                  {w.message}
                </div>
              ))}
              {t && <TestResult state={t} />}
            </li>
          );
        })}
      </ul>
    </section>
  );
}

function describe(c: IConnectionInfo): string {
  const kind = DB_TYPES.find(d => d.value === c.db_type)?.label ?? c.db_type;
  if (c.shared) {
    return `${kind} · shared with you`;
  }
  if (c.db_type === 'sqlite') {
    return `${kind} · ${c.host ?? ''}`;
  }
  const where = `${c.username ? c.username + '@' : ''}${c.host ?? ''}${c.port ? ':' + c.port : ''}${c.database ? '/' + c.database : ''}`;
  return `${kind} · ${where} · ${c.has_password ? 'password set' : 'no password'}${c.allow_write ? ' · writes allowed' : ''}`;
}

function TestResult(props: { state: TestState }): JSX.Element {
  const s = props.state;
  if ('busy' in s) {
    return (
      <div className="jp-AigisChat-testResult" role="status">
        <Spinner /> Testing…
      </div>
    );
  }
  if ('result' in s) {
    return (
      <div className="jp-AigisChat-testResult jp-mod-ok" role="status">
        <checkIcon.react tag="span" className="jp-AigisChat-buttonIcon" />
        Connected: {s.result.db_type} {s.result.server_version}, {Math.round(s.result.latency_ms)} ms
      </div>
    );
  }
  return (
    <div className="jp-AigisChat-testResult jp-mod-error" role="alert">
      {s.error.message}
    </div>
  );
}

interface IFormState {
  name: string;
  db_type: DbType;
  host: string;
  port: string;
  database: string;
  username: string;
  password: string;
  removePassword: boolean;
  allow_write: boolean;
  notes: string;
}

function initialForm(c: IConnectionInfo | null): IFormState {
  return {
    name: c?.name ?? '',
    db_type: ((c?.db_type as DbType) ?? 'postgres') as DbType,
    host: c?.host ?? '',
    port: c?.port ? String(c.port) : '',
    database: c?.database ?? '',
    username: c?.username ?? '',
    password: '',
    removePassword: false,
    allow_write: c?.allow_write ?? false,
    notes: c?.notes ?? ''
  };
}

function ConnectionForm(props: {
  model: ChatModel;
  connection: IConnectionInfo | null;
  onDone: () => void;
}): JSX.Element {
  const { model, connection } = props;
  const [f, setF] = useState<IFormState>(initialForm(connection));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<IErrorInfo | null>(null);
  const [untested, setUntested] = useState(false);
  const sqlite = f.db_type === 'sqlite';
  const id = connection?.id ?? 'new';
  const set = <K extends keyof IFormState>(k: K, v: IFormState[K]) =>
    setF(old => ({ ...old, [k]: v }));

  const body = (): IConnectionBody => {
    const b: IConnectionBody = {
      name: f.name.trim(),
      db_type: f.db_type,
      host: f.host.trim() || null,
      allow_write: f.allow_write
    };
    if (!sqlite) {
      b.port = f.port.trim() ? Number(f.port) : null;
      b.database = f.database.trim() || null;
      b.username = f.username.trim() || null;
      if (f.password) {
        b.password = f.password;
      } else if (f.removePassword) {
        b.password = '';
      } else if (!connection) {
        b.password = null;
      }
    } else if (connection && connection.db_type !== 'sqlite') {
      b.port = null;
      b.database = null;
      b.username = null;
      b.password = '';
    }
    // sent when they change (a new connection: when there are some); "" would mean none too
    const notes = f.notes.trim();
    if (notes !== (connection?.notes ?? '').trim()) {
      b.notes = notes || null;
    }
    return b;
  };

  const save = async (test: boolean) => {
    setBusy(true);
    setError(null);
    try {
      await model.saveConnection(connection?.id ?? null, body(), test);
      props.onDone();
    } catch (err) {
      setError(errorInfo(err));
      setUntested(test);
    } finally {
      setBusy(false);
    }
  };

  const field = (name: keyof IFormState, label: string, input: JSX.Element) => (
    <div className="jp-AigisChat-field">
      <label htmlFor={`aigis-${id}-${name}`}>{label}</label>
      {input}
    </div>
  );
  const text = (name: keyof IFormState, placeholder = '', type = 'text') => (
    <input
      id={`aigis-${id}-${name}`}
      className="jp-mod-styled jp-AigisChat-input"
      type={type}
      value={f[name] as string}
      placeholder={placeholder}
      onChange={e => set(name, e.target.value as any)}
    />
  );

  return (
    <form
      className="jp-AigisChat-form"
      aria-label={connection ? `Edit connection ${connection.name}` : 'New connection'}
      onSubmit={e => {
        e.preventDefault();
        void save(true);
      }}
    >
      {field('name', 'Name', text('name', 'e.g. sales'))}
      {field(
        'db_type',
        'Type',
        <HTMLSelect
          id={`aigis-${id}-db_type`}
          value={f.db_type}
          onChange={e => set('db_type', e.target.value as DbType)}
          options={DB_TYPES.map(d => ({ value: d.value, label: d.label }))}
        />
      )}
      {sqlite ? (
        field('host', 'Database file', text('host', '/path/to/database.sqlite'))
      ) : (
        <>
          {field('host', 'Host', text('host', 'db.example.org'))}
          {field(
            'port',
            'Port',
            text('port', DB_TYPES.find(d => d.value === f.db_type)?.port ?? '', 'number')
          )}
          {field('database', 'Database', text('database'))}
          {field('username', 'User name', text('username'))}
          <div className="jp-AigisChat-field">
            <label htmlFor={`aigis-${id}-password`}>Password</label>
            <input
              id={`aigis-${id}-password`}
              className="jp-mod-styled jp-AigisChat-input"
              type="password"
              autoComplete="new-password"
              value={f.password}
              disabled={f.removePassword}
              placeholder={connection?.has_password ? 'set (leave empty to keep it)' : 'not set'}
              aria-describedby={`aigis-${id}-password-state`}
              onChange={e => set('password', e.target.value)}
            />
            <div id={`aigis-${id}-password-state`} className="jp-AigisChat-hint">
              {connection?.has_password
                ? 'A password is saved. It is never shown; type a new one to replace it.'
                : 'No password is saved.'}
            </div>
            {connection?.has_password && (
              <label className="jp-AigisChat-check">
                <input
                  type="checkbox"
                  checked={f.removePassword}
                  onChange={e => set('removePassword', e.target.checked)}
                />
                Remove the saved password
              </label>
            )}
          </div>
        </>
      )}
      <label className="jp-AigisChat-check">
        <input
          type="checkbox"
          checked={f.allow_write}
          onChange={e => set('allow_write', e.target.checked)}
        />
        Allow statements that change data (off: read-only)
      </label>
      <div className="jp-AigisChat-field">
        <label htmlFor={`aigis-${id}-notes`}>Notes</label>
        <textarea
          id={`aigis-${id}-notes`}
          className="jp-mod-styled jp-AigisChat-notes"
          rows={4}
          maxLength={NOTES_MAX}
          value={f.notes}
          placeholder="Business terms and rules the assistant should know, e.g. 'revenue means the sum of Invoice.Total'"
          aria-describedby={`aigis-${id}-notes-hint`}
          onChange={e => set('notes', e.target.value)}
        />
        <div id={`aigis-${id}-notes-hint`} className="jp-AigisChat-hint">
          The assistant reads them with every question on this connection.{' '}
          {f.notes.length.toLocaleString()} / {NOTES_MAX.toLocaleString()} characters.
        </div>
      </div>
      {error && (
        <div className="jp-AigisChat-error" role="alert">
          {error.message}
        </div>
      )}
      <div className="jp-AigisChat-formButtons">
        <TextButton onClick={props.onDone} disabled={busy}>
          Cancel
        </TextButton>
        {error && untested && (
          <TextButton onClick={() => void save(false)} disabled={busy}>
            Save without testing
          </TextButton>
        )}
        <TextButton accept type="submit" disabled={busy || !f.name.trim()}>
          {busy ? 'Testing…' : 'Test and save'}
        </TextButton>
      </div>
    </form>
  );
}
