/** Small shared pieces: icon buttons, the hook that re-renders on the model's signal. */

import { LabIcon } from '@jupyterlab/ui-components';
import { ISignal } from '@lumino/signaling';
import React, { useEffect, useState } from 'react';

/** Re-render whenever `signal` fires, and once when it is first listened to. */
export function useSignal<T>(signal: ISignal<T, any>): void {
  const [, setTick] = useState(0);
  useEffect(() => {
    const bump = () => setTick(n => n + 1);
    signal.connect(bump);
    // React runs effects in a task after the commit: a change emitted in between (the
    // model loading while the panel first mounts, as after a page reload) had no
    // listener, and the view would keep showing the state it rendered. Catch up now.
    bump();
    return () => {
      signal.disconnect(bump);
    };
  }, [signal]);
}

export interface IIconButtonProps extends React.ButtonHTMLAttributes<HTMLButtonElement> {
  icon: LabIcon;
  /** The accessible name, also the tooltip. */
  label: string;
  text?: string;
}

/** A toolbar-style button: JupyterLab's classes, an accessible name, the icon. */
export function IconButton(props: IIconButtonProps): JSX.Element {
  const { icon, label, text, className, ...rest } = props;
  return (
    <button
      type="button"
      aria-label={label}
      title={label}
      className={`jp-ToolbarButtonComponent jp-mod-minimal jp-Button jp-AigisChat-iconButton ${className ?? ''}`}
      {...rest}
    >
      <icon.react tag="span" className="jp-ToolbarButtonComponent-icon" />
      {text && <span className="jp-ToolbarButtonComponent-label">{text}</span>}
    </button>
  );
}

/** A text button in JupyterLab's dialog-button style. */
export function TextButton(
  props: React.ButtonHTMLAttributes<HTMLButtonElement> & { accept?: boolean; warn?: boolean }
): JSX.Element {
  const { accept, warn, className, ...rest } = props;
  const kind = warn ? 'jp-mod-warn' : accept ? 'jp-mod-accept' : 'jp-mod-reject';
  return (
    <button
      type="button"
      className={`jp-Dialog-button jp-mod-styled ${kind} jp-AigisChat-textButton ${className ?? ''}`}
      {...rest}
    />
  );
}

/** A spinner drawn in CSS (Debian's Chromium has no emoji font; no images needed). */
export function Spinner(): JSX.Element {
  return <span className="jp-AigisChat-spinner" aria-hidden="true" />;
}

/**
 * A part of the panel that fails to render shows an inline error instead of taking the
 * whole panel down (React unmounts a tree on an uncaught render error).
 */
export class Boundary extends React.Component<
  { what: string; children?: React.ReactNode },
  { error: Error | null }
> {
  state = { error: null as Error | null };

  static getDerivedStateFromError(error: Error): { error: Error } {
    return { error };
  }

  render(): React.ReactNode {
    if (this.state.error) {
      return (
        <div className="jp-AigisChat-error" role="alert">
          Could not show this {this.props.what}: {this.state.error.message}
        </div>
      );
    }
    return this.props.children;
  }
}
