/** Design tokens → CSS custom properties on the embed's root element. */

export interface PushrailThemeColors {
  primary?: string;
  background?: string;
  surface?: string;
  text?: string;
  muted?: string;
  border?: string;
  success?: string;
  danger?: string;
  warning?: string;
  /** Text on filled buttons (primary and danger): white by default, dark in `darkTheme`. */
  onPrimary?: string;
}

export interface PushrailThemeFontSizes {
  sm?: string | number;
  md?: string | number;
  lg?: string | number;
  xl?: string | number;
}

export interface PushrailTheme {
  colors?: PushrailThemeColors;
  fontFamily?: string;
  /** Monospace family for ids, event types and response excerpts. */
  monoFontFamily?: string;
  fontSizes?: PushrailThemeFontSizes;
  /** Corner radius of controls and cards; numbers are pixels. */
  radius?: string | number;
  /** The base spacing unit every gap and padding is a multiple of; numbers are pixels. */
  spacing?: string | number;
  density?: 'compact' | 'comfortable';
  /** The CSS `color-scheme` of the embed (native controls, scrollbars, date pickers): `'dark'` on dark colours. */
  colorScheme?: 'light' | 'dark';
}

/** Deeper overrides: extra class names on the embed's building blocks. */
export interface PushrailClassNames {
  root?: string;
  tabList?: string;
  tab?: string;
  panel?: string;
  button?: string;
  input?: string;
  label?: string;
  table?: string;
  badge?: string;
  dialog?: string;
  card?: string;
  notice?: string;
}

export const defaultTheme = {
  colors: {
    primary: '#4f46e5',
    background: '#ffffff',
    surface: '#f7f8fa',
    text: '#1a1f36',
    muted: '#5d6478',
    border: '#e3e6ec',
    success: '#137a43',
    danger: '#c0362c',
    warning: '#a15c07',
    onPrimary: '#ffffff',
  },
  fontFamily:
    '-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif',
  monoFontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace',
  fontSizes: { sm: '12px', md: '14px', lg: '16px', xl: '20px' },
  radius: '6px',
  spacing: '8px',
  density: 'comfortable',
  colorScheme: 'light',
} as const satisfies Required<PushrailTheme>;

/**
 * A dark preset: pass it when the vendor's dashboard is dark, and spread it to change a token
 * (`{ ...darkTheme, colors: { ...darkTheme.colors, primary: '#9d97ff' } }`). Every text colour
 * keeps WCAG AA contrast (4.5:1) on the background and surface, as does the text on filled buttons.
 */
export const darkTheme = {
  colorScheme: 'dark',
  colors: {
    primary: '#8b85ff',
    background: '#12141c',
    surface: '#1a1d27',
    text: '#e7e9f0',
    muted: '#a2a9bb',
    border: '#313646',
    success: '#4cc98a',
    danger: '#ff7d73',
    warning: '#e8ad4f',
    onPrimary: '#12141c',
  },
} as const satisfies PushrailTheme;

const COLOR_KEYS = [
  'primary',
  'background',
  'surface',
  'text',
  'muted',
  'border',
  'success',
  'danger',
  'warning',
  'onPrimary',
] as const satisfies readonly (keyof PushrailThemeColors)[];

const SIZE_KEYS = ['sm', 'md', 'lg', 'xl'] as const satisfies readonly (keyof PushrailThemeFontSizes)[];

function length(value: string | number): string {
  return typeof value === 'number' ? `${String(value)}px` : value;
}

/**
 * The custom properties for a theme, defaults filled in. Every token has one variable:
 * `--pr-color-<name>`, `--pr-font-family`, `--pr-font-mono`, `--pr-font-size-<sm|md|lg|xl>`,
 * `--pr-radius`, `--pr-space`, `--pr-density` (1 comfortable, 0.75 compact), `--pr-color-scheme`.
 */
export function themeToCssVars(theme: PushrailTheme = {}): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const key of COLOR_KEYS) {
    vars[`--pr-color-${key === 'onPrimary' ? 'on-primary' : key}`] = theme.colors?.[key] ?? defaultTheme.colors[key];
  }
  vars['--pr-font-family'] = theme.fontFamily ?? defaultTheme.fontFamily;
  vars['--pr-font-mono'] = theme.monoFontFamily ?? defaultTheme.monoFontFamily;
  for (const key of SIZE_KEYS) {
    vars[`--pr-font-size-${key}`] = length(theme.fontSizes?.[key] ?? defaultTheme.fontSizes[key]);
  }
  vars['--pr-radius'] = length(theme.radius ?? defaultTheme.radius);
  vars['--pr-space'] = length(theme.spacing ?? defaultTheme.spacing);
  vars['--pr-density'] = (theme.density ?? defaultTheme.density) === 'compact' ? '0.75' : '1';
  vars['--pr-color-scheme'] = theme.colorScheme ?? defaultTheme.colorScheme;
  return vars;
}

/** Joins class names, skipping empty ones. */
export function cx(...names: (string | false | null | undefined)[]): string {
  return names.filter(Boolean).join(' ');
}
