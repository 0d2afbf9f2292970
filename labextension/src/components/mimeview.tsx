/**
 * Renders one MIME bundle with JupyterLab's own renderers (`IRenderMimeRegistry`): the
 * same markdown, HTML-table and Vega-Lite renderers as notebook outputs.
 */

import { IRenderMime, IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { MessageLoop } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';
import React, { useEffect, useRef, useState } from 'react';

export interface IMimeViewProps {
  rendermime: IRenderMimeRegistry;
  mimeType: string;
  data: unknown;
  /** Options for the renderer, as a notebook output's metadata gives them. */
  metadata?: ReadonlyPartialJSONObject;
  /** Model output is untrusted: renderers sanitize it as they do untrusted notebook outputs. */
  trusted?: boolean;
  className?: string;
  label?: string;
}

export function MimeView(props: IMimeViewProps): JSX.Element {
  const { rendermime, mimeType, data, metadata, trusted = false } = props;
  const host = useRef<HTMLDivElement>(null);
  const renderer = useRef<IRenderMime.IRenderer | null>(null);
  const latest = useRef<unknown>(data);
  const busy = useRef(false);
  const again = useRef(false);
  const [failure, setFailure] = useState<string | null>(null);
  latest.current = data;

  const render = async (): Promise<void> => {
    if (busy.current) {
      again.current = true; // render the newest data once the current render ends
      return;
    }
    busy.current = true;
    try {
      do {
        again.current = false;
        const r = renderer.current;
        if (!r) {
          break;
        }
        const model = rendermime.createModel({
          data: { [mimeType]: latest.current as any },
          metadata,
          trusted
        });
        await r.renderModel(model);
      } while (again.current);
      setFailure(null);
    } catch (err) {
      setFailure(String((err as Error)?.message ?? err));
    } finally {
      busy.current = false;
    }
  };

  useEffect(() => {
    if (!rendermime.mimeTypes.includes(mimeType)) {
      setFailure(`JupyterLab has no renderer for ${mimeType}.`);
      return;
    }
    const r = rendermime.createRenderer(mimeType);
    renderer.current = r;
    // React owns the host node and may remove it before this effect's cleanup runs, when
    // `Widget.detach` would throw: the renderer gets the attach and detach messages by hand.
    if (host.current) {
      MessageLoop.sendMessage(r, Widget.Msg.BeforeAttach);
      host.current.appendChild(r.node);
      MessageLoop.sendMessage(r, Widget.Msg.AfterAttach);
    }
    void render();
    return () => {
      renderer.current = null;
      if (r.isAttached) {
        MessageLoop.sendMessage(r, Widget.Msg.BeforeDetach);
        r.node.remove();
        MessageLoop.sendMessage(r, Widget.Msg.AfterDetach);
      }
      r.dispose();
    };
  }, [mimeType, rendermime]);

  useEffect(() => {
    void render();
  }, [data]);

  return (
    <div className={props.className} aria-label={props.label} role={props.label ? 'group' : undefined}>
      <div ref={host} />
      {failure && <div className="jp-AigisChat-renderError">{failure}</div>}
    </div>
  );
}
