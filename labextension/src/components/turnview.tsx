/**
 * One question and its answer: the progress line while it runs, the answer in
 * markdown, the SQL (collapsible, copyable), the result table and chart (rendered by
 * JupyterLab's renderers), an inline error with its action, follow-up suggestions,
 * "Insert into notebook" and "Verify" (save the question and SQL as a verified query).
 */

import { Clipboard } from '@jupyterlab/apputils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { copyIcon, notebookIcon } from '@jupyterlab/ui-components';
import React, { useState } from 'react';

import { ChatModel } from '../model';
import { ITurn, PHASE_LABELS } from '../turn';
import { IAction, IErrorInfo } from '../types';
import { IconButton, Spinner, TextButton } from './common';
import { answerMarkdown, tableHtml } from '../html';
import { MimeView } from './mimeview';
import { VerifyButton } from './verify';

export const VEGALITE_MIME = 'application/vnd.vegalite.v5+json';

/**
 * The chart's actions menu keeps its image exports only: vega-embed's "View Source" writes
 * the spec unescaped into a same-origin window, where an HTML string from the model or the
 * database would run, and "Open in Vega Editor" posts the data to another site. (The
 * server's specs say so too; this also covers answers stored before they did.)
 */
export const CHART_METADATA = {
  [VEGALITE_MIME]: {
    embed_options: { actions: { export: true, source: false, compiled: false, editor: false } }
  }
};

export interface ITurnViewProps {
  turn: ITurn;
  model: ChatModel;
  rendermime: IRenderMimeRegistry;
  /** Puts the answer into the active notebook as cells that reproduce it. */
  onInsert: (turn: ITurn) => Promise<void>;
  canInsert: boolean;
}

export function TurnView(props: ITurnViewProps): JSX.Element {
  const { turn, model, rendermime } = props;
  const [copied, setCopied] = useState(false);
  const [inserting, setInserting] = useState<string | null>(null);

  const copy = () => {
    Clipboard.copyToSystem(turn.sql ?? '');
    setCopied(true);
    setTimeout(() => setCopied(false), 1500);
  };

  const insert = async () => {
    setInserting('Inserting…');
    try {
      await props.onInsert(turn);
      setInserting(null);
    } catch (err) {
      setInserting(`Could not insert: ${(err as Error).message}`);
    }
  };

  const showAnswer = turn.answer.length > 0;
  const finished = !turn.running;
  const verify = model.verifyStateOf(turn);
  const canInsertHere = finished && Boolean(turn.sql) && Boolean(turn.table);
  return (
    <article
      className="jp-AigisChat-turn"
      aria-label={turn.question ? `Question: ${turn.question}` : 'Answer'}
      data-running={turn.running ? 'true' : 'false'}
    >
      {turn.question && (
        <div className="jp-AigisChat-question">
          <div className="jp-AigisChat-bubble">{turn.question}</div>
        </div>
      )}
      <div className="jp-AigisChat-answer">
        {turn.running && (
          <div className="jp-AigisChat-progress" role="status" aria-live="polite">
            <Spinner />
            <span>{turn.phase ? PHASE_LABELS[turn.phase] : 'Thinking'}…</span>
          </div>
        )}
        {showAnswer && (
          <MimeView
            className="jp-AigisChat-markdown"
            rendermime={rendermime}
            mimeType="text/markdown"
            data={answerMarkdown(turn.answer)}
            label="Answer"
          />
        )}
        {turn.sql && (
          <details className="jp-AigisChat-sql">
            <summary>
              SQL{turn.verified ? ' (verified query)' : ''}
              <IconButton
                icon={copyIcon}
                label={copied ? 'SQL copied' : 'Copy SQL'}
                className="jp-AigisChat-copy"
                onClick={e => {
                  e.preventDefault();
                  copy();
                }}
              />
            </summary>
            <pre aria-label="SQL">{turn.sql}</pre>
          </details>
        )}
        {turn.table && (
          <div className="jp-AigisChat-result">
            <MimeView
              className="jp-AigisChat-table jp-OutputArea-output"
              rendermime={rendermime}
              mimeType="text/html"
              data={tableHtml(turn.table.columns, turn.table.rows)}
              label="Result table"
            />
            <div className="jp-AigisChat-caption">
              {rowsCaption(turn.table.rows.length, turn.table.row_count, turn.table.truncated)}
            </div>
          </div>
        )}
        {turn.chart && (
          <MimeView
            className="jp-AigisChat-chart"
            rendermime={rendermime}
            mimeType={VEGALITE_MIME}
            data={turn.chart}
            metadata={CHART_METADATA}
            label="Chart"
          />
        )}
        {turn.stopped && finished && (
          <div className="jp-AigisChat-stopped" role="note">
            Stopped.
          </div>
        )}
        {turn.error && !(turn.stopped && turn.error.reason === 'cancelled') && (
          <ErrorView error={turn.error} model={model} turn={turn} />
        )}
        {finished && turn.suggestions.length > 0 && (
          <div className="jp-AigisChat-suggestions" aria-label="Suggested questions" role="group">
            {turn.suggestions.map(s => (
              <button
                key={s}
                type="button"
                className="jp-AigisChat-suggestion"
                disabled={model.running}
                onClick={() => void model.send(s)}
              >
                {s}
              </button>
            ))}
          </div>
        )}
        {(canInsertHere || verify !== 'none') && (
          <div className="jp-AigisChat-turnActions">
            {canInsertHere && (
              <IconButton
                icon={notebookIcon}
                label="Insert into notebook"
                text="Insert into notebook"
                disabled={!props.canInsert || inserting === 'Inserting…'}
                title={
                  props.canInsert
                    ? 'Add cells that rerun this SQL (no model) to the active notebook'
                    : 'This thread has no connection to run the SQL on'
                }
                onClick={() => void insert()}
              />
            )}
            {inserting && <span className="jp-AigisChat-caption">{inserting}</span>}
            <VerifyButton
              state={verify}
              error={turn.verifyError}
              unavailable={
                props.canInsert ? null : 'This thread has no connection to save the query on'
              }
              onVerify={() => void model.verifyTurn(turn.key)}
            />
          </div>
        )}
      </div>
    </article>
  );
}

function rowsCaption(shown: number, count: number, truncated: boolean): string {
  const n = (x: number) => x.toLocaleString();
  if (truncated) {
    return `First ${n(count)} rows (the row cap); ${n(shown)} shown.`;
  }
  if (shown < count) {
    return `${n(count)} rows; ${n(shown)} shown.`;
  }
  return count === 1 ? '1 row.' : `${n(count)} rows.`;
}

/** An error inline, its structured action as a button where the sidebar can do it. */
export function ErrorView(props: {
  error: IErrorInfo;
  model: ChatModel;
  turn?: ITurn;
}): JSX.Element {
  const { error, model } = props;
  return (
    <div className="jp-AigisChat-error" role="alert">
      <div>{error.message}</div>
      {error.action && <ActionView action={error.action} model={model} turn={props.turn} />}
    </div>
  );
}

function ActionView(props: { action: IAction; model: ChatModel; turn?: ITurn }): JSX.Element | null {
  const { action, model, turn } = props;
  switch (action.kind) {
    case 'pick_model':
      return (
        <TextButton accept onClick={() => model.requestPicker('model')}>
          Pick a model
        </TextButton>
      );
    case 'pick_connection':
      return (
        <TextButton accept onClick={() => model.requestPicker('connection')}>
          Pick a connection
        </TextButton>
      );
    case 'add_connection':
      return (
        <TextButton accept onClick={() => model.setView('connections', true)}>
          Add a connection
        </TextButton>
      );
    case 'new_thread':
      return (
        <TextButton accept onClick={() => void model.newThread()}>
          New chat
        </TextButton>
      );
    case 'retry':
      return turn?.question ? (
        <TextButton accept disabled={model.running} onClick={() => void model.send(turn.question)}>
          Ask again
        </TextButton>
      ) : null;
    case 'set_env':
      return (
        <div className="jp-AigisChat-hint">
          Set <code>{action.name}</code> in the Jupyter server's environment, then restart it.
        </div>
      );
    case 'install_extra':
      return (
        <div className="jp-AigisChat-hint">
          Install it: <code>pip install "aigis-jupyter[{action.name}]"</code>
        </div>
      );
    default:
      return null;
  }
}
