/** The left-sidebar widget hosting the chat. */

import { ReactWidget } from '@jupyterlab/apputils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import React from 'react';

import { Chat } from './components/chat';
import { aigisIcon } from './icons';
import { ChatModel } from './model';
import { ITurn } from './turn';
import { IThreadInfo } from './types';

export const PANEL_ID = 'aigis-chat';

export interface IPanelOptions {
  model: ChatModel;
  rendermime: IRenderMimeRegistry;
  onInsert: (turn: ITurn, thread: IThreadInfo) => Promise<void>;
}

export class AigisPanel extends ReactWidget {
  constructor(readonly options: IPanelOptions) {
    super();
    this.id = PANEL_ID;
    this.addClass('jp-AigisChat');
    this.title.icon = aigisIcon;
    this.title.caption = 'Aigis: chat with your databases';
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'Aigis chat');
  }

  get model(): ChatModel {
    return this.options.model;
  }

  dispose(): void {
    if (!this.isDisposed) {
      this.options.model.dispose();
    }
    super.dispose();
  }

  protected render(): JSX.Element {
    return (
      <Chat
        model={this.options.model}
        rendermime={this.options.rendermime}
        onInsert={this.options.onInsert}
      />
    );
  }
}
