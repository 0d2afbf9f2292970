/**
 * aigis-jupyter's JupyterLab sidebar: chat with your databases through the server
 * extension's REST + SSE API (`{base_url}aigis/`).
 */

import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { IStateDB } from '@jupyterlab/statedb';

import { AigisAPI } from './api';
import { cellsToInsert, connectionRef } from './cell';
import { aigisIcon } from './icons';
import { ChatModel, ISidebarState } from './model';
import { AigisPanel, PANEL_ID } from './panel';
import { ITurn } from './turn';
import { IThreadInfo } from './types';

export const PLUGIN_ID = 'aigis-jupyter:sidebar';
const STATE_KEY = `${PLUGIN_ID}:state`;

export namespace CommandIDs {
  export const open = 'aigis:open-chat';
  export const newThread = 'aigis:new-chat';
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Chat with your databases: threads, connections, models, streamed answers.',
  autoStart: true,
  requires: [IRenderMimeRegistry],
  optional: [ICommandPalette, ILayoutRestorer, IStateDB, INotebookTracker],
  activate: (
    app: JupyterFrontEnd,
    rendermime: IRenderMimeRegistry,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    state: IStateDB | null,
    notebooks: INotebookTracker | null
  ) => {
    const model = new ChatModel(new AigisAPI());
    const panel = new AigisPanel({
      model,
      rendermime,
      onInsert: (turn, thread) => insertIntoNotebook(app, notebooks, turn, thread)
    });
    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, PANEL_ID);

    app.commands.addCommand(CommandIDs.open, {
      label: 'Open Aigis Chat',
      caption: 'Chat with your databases in the left sidebar',
      icon: args => (args.isPalette ? undefined : aigisIcon),
      execute: () => {
        app.shell.activateById(panel.id);
        const box = panel.node.querySelector<HTMLTextAreaElement>('textarea');
        box?.focus();
      }
    });
    app.commands.addCommand(CommandIDs.newThread, {
      label: 'New Aigis Chat',
      caption: 'Start a new chat thread in the Aigis sidebar',
      execute: async () => {
        app.shell.activateById(panel.id);
        await model.newThread();
      }
    });
    palette?.addItem({ command: CommandIDs.open, category: 'Aigis' });
    palette?.addItem({ command: CommandIDs.newThread, category: 'Aigis' });

    model.stateChanged.connect((_, s) => {
      void state?.save(STATE_KEY, { ...s });
    });
    void app.restored.then(async () => {
      let restored: Partial<ISidebarState> | undefined;
      try {
        restored = ((await state?.fetch(STATE_KEY)) as Partial<ISidebarState>) ?? undefined;
      } catch {
        restored = undefined;
      }
      await model.load(restored);
    });
  }
};

/**
 * Put an answer into the active notebook (a new one when none is open) as cells that
 * reproduce it without the model, below the active cell.
 */
async function insertIntoNotebook(
  app: JupyterFrontEnd,
  notebooks: INotebookTracker | null,
  turn: ITurn,
  thread: IThreadInfo
): Promise<void> {
  if (!turn.sql || !thread.connection_id) {
    throw new Error('this answer has no SQL to rerun');
  }
  let panel: NotebookPanel | null = notebooks?.currentWidget ?? null;
  if (!panel) {
    // a new notebook on the default kernel, without the kernel dialog
    const kernelName = app.serviceManager.kernelspecs.specs?.default;
    panel = (await app.commands.execute(
      'notebook:create-new',
      kernelName ? { kernelName } : {}
    )) as NotebookPanel;
  }
  if (!panel) {
    throw new Error('open a notebook first');
  }
  await panel.context.ready;
  const notebook = panel.content;
  const cells = notebook.model!.cells;
  const active = Math.max(0, notebook.activeCellIndex);
  const above: string[] = [];
  for (let i = 0; i <= active && i < cells.length; i++) {
    above.push(cells.get(i).sharedModel.getSource());
  }
  const sources = cellsToInsert(above, {
    sql: turn.sql,
    connection: connectionRef(thread.connection_name, thread.connection_id),
    variable: 'df',
    chart: turn.chart
  });
  sources.forEach((source, i) => {
    const current = notebook.activeCell;
    const reuse =
      i === 0 &&
      current !== null &&
      current.model.type === 'code' &&
      current.model.sharedModel.getSource().trim() === '';
    if (!reuse) {
      NotebookActions.insertBelow(notebook);
    }
    notebook.activeCell!.model.sharedModel.setSource(source);
  });
  app.shell.activateById(panel.id);
}

export default plugin;
