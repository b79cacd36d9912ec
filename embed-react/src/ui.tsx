/** Small building blocks shared by the screens. Every class is prefixed `pr-` and styled under `.pr-embed`. */

import {
  createContext,
  useContext,
  useEffect,
  useId,
  useRef,
  useState,
  type ButtonHTMLAttributes,
  type ReactNode,
  type RefObject,
} from 'react';

import { cx, type PushrailClassNames } from './theme.js';

export const ClassNamesContext = createContext<PushrailClassNames>({});

export function useClassNames(): PushrailClassNames {
  return useContext(ClassNamesContext);
}

/* ---------------------------------------------------------------- icons */

type IconName =
  | 'check'
  | 'x'
  | 'clock'
  | 'alert'
  | 'info'
  | 'spinner'
  | 'pause'
  | 'plus'
  | 'arrow-left'
  | 'send'
  | 'refresh'
  | 'lock'
  | 'trash'
  | 'key'
  | 'play'
  | 'copy';

const PATHS: Record<IconName, ReactNode> = {
  check: <path d="M3.5 8.5l3 3 6-7" />,
  x: <path d="M4.5 4.5l7 7m0-7l-7 7" />,
  clock: (
    <>
      <circle cx="8" cy="8" r="6" />
      <path d="M8 4.8V8l2.2 1.4" />
    </>
  ),
  alert: (
    <>
      <path d="M8 1.8l6.4 11.4H1.6z" />
      <path d="M8 6.4v3M8 11.4v.1" />
    </>
  ),
  info: (
    <>
      <circle cx="8" cy="8" r="6" />
      <path d="M8 7.2v4M8 4.8v.1" />
    </>
  ),
  spinner: <path d="M8 2a6 6 0 1 1-6 6" />,
  pause: (
    <>
      <circle cx="8" cy="8" r="6" />
      <path d="M6.6 5.8v4.4M9.4 5.8v4.4" />
    </>
  ),
  plus: <path d="M8 3v10M3 8h10" />,
  'arrow-left': <path d="M13 8H3m4-4L3 8l4 4" />,
  send: <path d="M2.5 8l11-5.5-4 11-2-4.5z" />,
  refresh: <path d="M13 8a5 5 0 1 1-1.5-3.6M13 2.5v2.9h-2.9" />,
  lock: (
    <>
      <rect x="3.5" y="7" width="9" height="6.5" rx="1" />
      <path d="M5.5 7V5a2.5 2.5 0 0 1 5 0v2" />
    </>
  ),
  trash: <path d="M3 4.5h10M6.5 4.5V3h3v1.5M4.5 4.5l.6 8.5h5.8l.6-8.5" />,
  key: (
    <>
      <circle cx="5.5" cy="10.5" r="2.8" />
      <path d="M7.5 8.5l5.5-5.5M11 5l1.5 1.5" />
    </>
  ),
  play: <path d="M5 3.5v9l7-4.5z" />,
  copy: (
    <>
      <rect x="5.5" y="5.5" width="8" height="8" rx="1.2" />
      <path d="M10.5 5.5V3.7a1.2 1.2 0 0 0-1.2-1.2H3.7a1.2 1.2 0 0 0-1.2 1.2v5.6a1.2 1.2 0 0 0 1.2 1.2h1.8" />
    </>
  ),
};

export function Icon({ name, className }: { name: IconName; className?: string }) {
  return (
    <svg
      className={cx('pr-icon', name === 'spinner' && 'pr-spin', className)}
      viewBox="0 0 16 16"
      width="16"
      height="16"
      fill="none"
      stroke="currentColor"
      strokeWidth="1.6"
      strokeLinecap="round"
      strokeLinejoin="round"
      aria-hidden="true"
      focusable="false"
    >
      {PATHS[name]}
    </svg>
  );
}

/* -------------------------------------------------------------- buttons */

type Variant = 'primary' | 'secondary' | 'ghost' | 'danger';

export interface ButtonProps extends ButtonHTMLAttributes<HTMLButtonElement> {
  variant?: Variant;
  size?: 'sm' | 'md';
  icon?: IconName;
  busy?: boolean;
}

export function Button({
  variant = 'secondary',
  size = 'md',
  icon,
  busy = false,
  className,
  children,
  disabled,
  type = 'button',
  ...rest
}: ButtonProps) {
  const classNames = useClassNames();
  return (
    <button
      {...rest}
      type={type}
      disabled={disabled === true || busy}
      aria-busy={busy || undefined}
      className={cx('pr-button', `pr-button-${variant}`, size === 'sm' && 'pr-button-sm', classNames.button, className)}
    >
      {busy ? <Icon name="spinner" /> : icon ? <Icon name={icon} /> : null}
      {children}
    </button>
  );
}

/* ----------------------------------------------------------------- copy */

/** Selects an element's text, so that the customer can copy it with the keyboard. */
function selectContents(element: HTMLElement | null): void {
  const selection = typeof window === 'undefined' ? null : window.getSelection();
  if (!element || !selection) return;
  const range = document.createRange();
  range.selectNodeContents(element);
  selection.removeAllRanges();
  selection.addRange(range);
}

export interface CopyButtonProps {
  /** The text put on the clipboard. */
  text: string;
  /** What is copied, for the button's accessible name ("Copy external ID"). */
  what: string;
  /** The element showing `text`: selected when the clipboard can't be written. */
  source: RefObject<HTMLElement | null>;
  className?: string;
}

/**
 * "Copy" with the async Clipboard API. The outcome is announced through a live region next to
 * the button: "Copied", or, where the clipboard is unavailable (insecure origin, a permissions
 * policy, an old browser), the text is selected and the customer is told to copy it themselves.
 */
export function CopyButton({ text, what, source, className }: CopyButtonProps) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => {
    clearTimeout(timer.current);
  }, []);

  const copy = async () => {
    clearTimeout(timer.current);
    const clipboard = (navigator as { clipboard?: Partial<Clipboard> }).clipboard;
    try {
      if (!clipboard?.writeText) throw new Error('no clipboard');
      await clipboard.writeText(text);
      setState('copied');
      timer.current = setTimeout(() => {
        setState('idle');
      }, 2500);
    } catch {
      selectContents(source.current);
      setState('failed');
    }
  };

  return (
    <span className={cx('pr-copy', className)}>
      <span className={cx('pr-copy-status', state === 'failed' && 'pr-copy-status-failed')} aria-live="polite">
        {state === 'copied'
          ? 'Copied'
          : state === 'failed'
            ? "Couldn't copy here: the text is selected, press Ctrl+C (⌘C on a Mac)."
            : ''}
      </span>
      <Button
        size="sm"
        icon={state === 'copied' ? 'check' : 'copy'}
        aria-label={`Copy ${what}`}
        onClick={() => {
          void copy();
        }}
      >
        Copy
      </Button>
    </span>
  );
}

/* --------------------------------------------------------------- fields */

export interface FieldProps {
  id: string;
  label: ReactNode;
  required?: boolean;
  hint?: ReactNode;
  error?: string;
  children: ReactNode;
  /** Renders the label after the control (checkboxes). */
  inline?: boolean;
  /** Marks a field that is not required "Optional" (default); filters turn it off. */
  optionalTag?: boolean;
}

/** Label, control, hint and error; the control must use `describedBy(id, hint, error)`. */
export function Field({ id, label, required, hint, error, children, inline, optionalTag = true }: FieldProps) {
  const classNames = useClassNames();
  const labelNode = (
    <label htmlFor={id} className={cx('pr-label', classNames.label)}>
      {label}
      {!required && !inline && optionalTag ? <span className="pr-optional">Optional</span> : null}
    </label>
  );
  return (
    <div className={cx('pr-field', inline && 'pr-field-inline', error && 'pr-field-invalid')}>
      {inline ? (
        <div className="pr-inline-control">
          {children}
          {labelNode}
        </div>
      ) : (
        <>
          {labelNode}
          {children}
        </>
      )}
      {hint ? (
        <p className="pr-hint" id={`${id}-hint`}>
          {hint}
        </p>
      ) : null}
      {error ? (
        <p className="pr-error" id={`${id}-error`}>
          <Icon name="alert" />
          <span>{error}</span>
        </p>
      ) : null}
    </div>
  );
}

export function describedBy(id: string, hint: unknown, error: unknown): string | undefined {
  const ids = [hint ? `${id}-hint` : null, error ? `${id}-error` : null].filter(Boolean);
  return ids.length ? ids.join(' ') : undefined;
}

export function useInputClass(extra?: string): string {
  const classNames = useClassNames();
  return cx('pr-input', classNames.input, extra);
}

/* --------------------------------------------------------------- badges */

export type Tone = 'success' | 'danger' | 'warning' | 'neutral' | 'info';

export function Badge({ tone, icon, children }: { tone: Tone; icon: IconName; children: ReactNode }) {
  const classNames = useClassNames();
  return (
    <span className={cx('pr-badge', `pr-badge-${tone}`, classNames.badge)}>
      <Icon name={icon} />
      <span>{children}</span>
    </span>
  );
}

const STATUS: Record<string, { tone: Tone; icon: IconName; label: string }> = {
  succeeded: { tone: 'success', icon: 'check', label: 'Succeeded' },
  failed: { tone: 'danger', icon: 'x', label: 'Failed' },
  pending: { tone: 'warning', icon: 'clock', label: 'Pending' },
  delivering: { tone: 'info', icon: 'spinner', label: 'Delivering' },
  retryable_error: { tone: 'warning', icon: 'refresh', label: 'Retryable error' },
  permanent_error: { tone: 'danger', icon: 'x', label: 'Permanent error' },
  enabled: { tone: 'success', icon: 'check', label: 'Enabled' },
  disabled: { tone: 'neutral', icon: 'pause', label: 'Disabled' },
};

/** A delivery status, attempt outcome or destination state: text and icon, never colour alone. */
export function StatusBadge({ status }: { status: string }) {
  const known = STATUS[status] ?? { tone: 'neutral' as const, icon: 'info' as const, label: status };
  return (
    <Badge tone={known.tone} icon={known.icon}>
      {known.label}
    </Badge>
  );
}

/* -------------------------------------------------------------- notices */

export function Notice({
  tone,
  title,
  children,
  onDismiss,
}: {
  tone: 'danger' | 'success' | 'info' | 'warning';
  title?: ReactNode;
  children?: ReactNode;
  onDismiss?: () => void;
}) {
  const classNames = useClassNames();
  const icon: IconName = tone === 'success' ? 'check' : tone === 'info' ? 'info' : 'alert';
  return (
    <div
      className={cx('pr-notice', `pr-notice-${tone}`, classNames.notice)}
      role={tone === 'danger' ? 'alert' : 'status'}
    >
      <Icon name={icon} />
      <div className="pr-notice-body">
        {title ? <p className="pr-notice-title">{title}</p> : null}
        {children ? <div className="pr-notice-text">{children}</div> : null}
      </div>
      {onDismiss ? (
        <button type="button" className="pr-icon-button" onClick={onDismiss} aria-label="Dismiss">
          <Icon name="x" />
        </button>
      ) : null}
    </div>
  );
}

/* --------------------------------------------------------------- dialog */

export interface DialogProps {
  open: boolean;
  title: ReactNode;
  children?: ReactNode;
  onClose: () => void;
  footer?: ReactNode;
  tone?: 'default' | 'danger';
  wide?: boolean;
}

/** A modal on the native `<dialog>`: focus trap, Escape and backdrop come with it. */
export function Dialog({ open, title, children, onClose, footer, wide }: DialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const classNames = useClassNames();
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) {
      if (typeof dialog.showModal === 'function') dialog.showModal();
      else dialog.setAttribute('open', '');
    } else if (!open && dialog.open) {
      if (typeof dialog.close === 'function') dialog.close();
      else dialog.removeAttribute('open');
    }
  }, [open]);
  return (
    <dialog
      ref={ref}
      className={cx('pr-dialog', wide && 'pr-dialog-wide', classNames.dialog)}
      aria-labelledby={titleId}
      onCancel={(event) => {
        event.preventDefault();
        onClose();
      }}
      onClick={(event) => {
        // A click on the backdrop lands on the dialog element itself.
        if (event.target === ref.current) onClose();
      }}
    >
      {open ? (
        <div className="pr-dialog-inner">
          <h2 className="pr-dialog-title" id={titleId}>
            {title}
          </h2>
          <div className="pr-dialog-body">{children}</div>
          {footer ? <div className="pr-dialog-footer">{footer}</div> : null}
        </div>
      ) : null}
    </dialog>
  );
}

export interface ConfirmDialogProps {
  open: boolean;
  title: ReactNode;
  children?: ReactNode;
  confirmLabel: string;
  tone?: 'primary' | 'danger';
  busy?: boolean;
  error?: string | null;
  onConfirm: () => void;
  onCancel: () => void;
}

export function ConfirmDialog({
  open,
  title,
  children,
  confirmLabel,
  tone = 'primary',
  busy,
  error,
  onConfirm,
  onCancel,
}: ConfirmDialogProps) {
  return (
    <Dialog
      open={open}
      title={title}
      onClose={onCancel}
      footer={
        <>
          <Button onClick={onCancel} disabled={busy}>
            Cancel
          </Button>
          <Button variant={tone} onClick={onConfirm} busy={busy} autoFocus>
            {confirmLabel}
          </Button>
        </>
      }
    >
      {children}
      {error ? <Notice tone="danger">{error}</Notice> : null}
    </Dialog>
  );
}

/* ----------------------------------------------------------- misc bits */

export function PanelHeader({
  title,
  description,
  actions,
  back,
}: {
  title: ReactNode;
  description?: ReactNode;
  actions?: ReactNode;
  back?: { label: string; onClick: () => void };
}) {
  return (
    <div className="pr-panel-header">
      {back ? (
        <button type="button" className="pr-back" onClick={back.onClick}>
          <Icon name="arrow-left" />
          {back.label}
        </button>
      ) : null}
      <div className="pr-panel-header-row">
        <div>
          <h2 className="pr-title">{title}</h2>
          {description ? <p className="pr-description">{description}</p> : null}
        </div>
        {actions ? <div className="pr-actions">{actions}</div> : null}
      </div>
    </div>
  );
}

export function EmptyState({ icon, title, children }: { icon: IconName; title: string; children?: ReactNode }) {
  return (
    <div className="pr-empty">
      <span className="pr-empty-icon">
        <Icon name={icon} />
      </span>
      <p className="pr-empty-title">{title}</p>
      {children ? <div className="pr-empty-text">{children}</div> : null}
    </div>
  );
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <div className="pr-loading" role="status">
      <Icon name="spinner" />
      <span>{label}</span>
    </div>
  );
}

export function Table({ label, children }: { label: string; children: ReactNode }) {
  const classNames = useClassNames();
  return (
    <div className="pr-table-wrap">
      <table className={cx('pr-table', classNames.table)} aria-label={label}>
        {children}
      </table>
    </div>
  );
}

export function Card({ children, className }: { children: ReactNode; className?: string }) {
  const classNames = useClassNames();
  return <div className={cx('pr-card', classNames.card, className)}>{children}</div>;
}
