import { useRef, useState } from 'react';
import { Field } from './ui';

/**
 * A new API key, shown once: the broker keeps only its hash, so this is the only time anyone sees
 * it. A read-only field (selected on focus) and a button that copies it, saying whether it did.
 */
export function NewKey({ apiKey, label, hint }: { apiKey: string; label: string; hint?: string }) {
  const input = useRef<HTMLInputElement>(null);
  const [copy, setCopy] = useState<'copied' | 'failed' | null>(null);
  const copyKey = async () => {
    try {
      await navigator.clipboard.writeText(apiKey);
      setCopy('copied');
    } catch {
      // No clipboard (an insecure origin, a refused permission): select it for the keyboard instead.
      input.current?.select();
      setCopy('failed');
    }
  };
  return (
    <div className="new-key stack">
      <Field
        label={label}
        hint={hint ?? 'Shown once: it cannot be displayed again. Store it now, in a password manager.'}
      >
        {(a) => (
          <input
            {...a}
            ref={input}
            readOnly
            value={apiKey}
            className="mono"
            spellCheck={false}
            onFocus={(e) => e.target.select()}
          />
        )}
      </Field>
      <div className="form-actions">
        <button type="button" onClick={() => void copyKey()}>
          {copy === 'copied' ? 'Copied' : 'Copy key'}
        </button>
        <span role="status" className="muted">
          {copy === 'copied'
            ? 'The key is on the clipboard.'
            : copy === 'failed'
              ? 'The browser did not allow copying: the key is selected, copy it with the keyboard.'
              : ''}
        </span>
      </div>
    </div>
  );
}
