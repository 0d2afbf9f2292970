/**
 * The per-thread pickers: a button showing the current choice that opens a list of
 * every option, with the reason an option cannot be picked (a model not enabled here).
 */

import { caretDownIcon } from '@jupyterlab/ui-components';
import React, { useEffect, useRef } from 'react';

export interface IPickerOption {
  value: string | null;
  label: string;
  detail?: string;
  disabled?: boolean;
  /** Why it is disabled and how to enable it. */
  hint?: string;
}

export interface IPickerProps {
  /** The accessible name of the button and of the list ("Model", "Connection"). */
  label: string;
  /** What the button shows. */
  current: React.ReactNode;
  /** The button's accessible description of the current value. */
  currentText: string;
  options: IPickerOption[];
  selected: string | null;
  open: boolean;
  onOpenChange: (open: boolean) => void;
  onPick: (value: string | null) => void;
  /** Extra items below the options (e.g. "Manage connections…"). */
  footer?: React.ReactNode;
  className?: string;
  buttonClassName?: string;
}

export function Picker(props: IPickerProps): JSX.Element {
  const { open, onOpenChange } = props;
  const root = useRef<HTMLDivElement>(null);
  const list = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!open) {
      return;
    }
    // focus the selected option (or the first one) when the list opens
    const items = optionNodes();
    const sel =
      items.find(n => n.getAttribute('aria-selected') === 'true') ??
      items.find(n => n.getAttribute('aria-disabled') !== 'true') ??
      items[0];
    sel?.focus();
    const away = (e: MouseEvent) => {
      if (root.current && !root.current.contains(e.target as Node)) {
        onOpenChange(false);
      }
    };
    document.addEventListener('mousedown', away, true);
    return () => document.removeEventListener('mousedown', away, true);
  }, [open]);

  const optionNodes = (): HTMLElement[] =>
    Array.from(list.current?.querySelectorAll<HTMLElement>('[role=option]') ?? []);

  const onKeyDown = (e: React.KeyboardEvent) => {
    if (e.key === 'Escape') {
      e.stopPropagation();
      e.preventDefault();
      onOpenChange(false);
      return;
    }
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const items = optionNodes();
      const i = items.indexOf(document.activeElement as HTMLElement);
      const next = items[(i + (e.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length];
      next?.focus();
    }
  };

  const pick = (o: IPickerOption) => {
    if (o.disabled) {
      return;
    }
    props.onPick(o.value);
    onOpenChange(false);
  };

  return (
    <div className={`jp-AigisChat-picker ${props.className ?? ''}`} ref={root}>
      <button
        type="button"
        className={`jp-AigisChat-pickerButton ${props.buttonClassName ?? ''}`}
        aria-haspopup="listbox"
        aria-expanded={open}
        aria-label={`${props.label}: ${props.currentText}`}
        title={`${props.label}: ${props.currentText}`}
        onClick={() => onOpenChange(!open)}
      >
        <span className="jp-AigisChat-pickerLabel">{props.label}</span>
        <span className="jp-AigisChat-pickerValue">{props.current}</span>
        <caretDownIcon.react tag="span" className="jp-AigisChat-pickerCaret" />
      </button>
      {open && (
        <div className="jp-AigisChat-popover" onKeyDown={onKeyDown}>
          <div role="listbox" aria-label={props.label} ref={list}>
            {props.options.map(o => (
              <div
                key={o.value ?? '__none__'}
                role="option"
                tabIndex={-1}
                aria-selected={o.value === props.selected}
                aria-disabled={o.disabled || undefined}
                className={`jp-AigisChat-option${o.disabled ? ' jp-mod-disabled' : ''}${o.value === props.selected ? ' jp-mod-selected' : ''}`}
                onClick={() => pick(o)}
                onKeyDown={e => {
                  if (e.key === 'Enter' || e.key === ' ') {
                    e.preventDefault();
                    pick(o);
                  }
                }}
              >
                <div className="jp-AigisChat-optionLabel">{o.label}</div>
                {o.detail && <div className="jp-AigisChat-optionDetail">{o.detail}</div>}
                {o.hint && <div className="jp-AigisChat-optionHint">{o.hint}</div>}
              </div>
            ))}
          </div>
          {props.footer && <div className="jp-AigisChat-popoverFooter">{props.footer}</div>}
        </div>
      )}
    </div>
  );
}
