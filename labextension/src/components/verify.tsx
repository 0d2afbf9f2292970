/**
 * "Verify": save a turn's question and SQL as a verified query of the thread's connection,
 * which teaches the assistant that this SQL answers that question there. Saved (or an answer
 * that came from a verified query) it shows "Verified ✓" and cannot be clicked; a refusal
 * shows the server's words beside it.
 */

import React from 'react';

import { thumbsUpIcon } from '../icons';
import { VerifyState } from '../turn';
import { IErrorInfo } from '../types';
import { IconButton } from './common';

export const VERIFY_LABEL = 'Save as a verified query';
export const VERIFIED_TEXT = 'Verified ✓';

export interface IVerifyButtonProps {
  state: VerifyState;
  /** Why the last attempt failed (shown until the next one). */
  error: IErrorInfo | null;
  /** Why it cannot be saved here (no connection), or null. */
  unavailable?: string | null;
  onVerify: () => void;
}

export function VerifyButton(props: IVerifyButtonProps): JSX.Element | null {
  const { state, error, unavailable } = props;
  if (state === 'none') {
    return null;
  }
  if (state === 'verified') {
    return (
      <span
        className="jp-AigisChat-verified"
        title="Saved as a verified query of this connection"
      >
        {VERIFIED_TEXT}
      </span>
    );
  }
  const saving = state === 'saving';
  return (
    <>
      <IconButton
        icon={thumbsUpIcon}
        label={VERIFY_LABEL}
        text={saving ? 'Saving…' : 'Verify'}
        className="jp-AigisChat-verify"
        disabled={saving || Boolean(unavailable)}
        title={
          unavailable ||
          `${VERIFY_LABEL}: confirm that this SQL answers this question on this connection`
        }
        onClick={props.onVerify}
      />
      {error && !saving && (
        <span className="jp-AigisChat-verifyError" role="alert">
          {error.message}
        </span>
      )}
    </>
  );
}
