import { readFileSync } from 'node:fs';
import { fileURLToPath, URL as NodeURL } from 'node:url';

import { cleanup, render } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';

import { PushrailEmbed } from '../../src/PushrailEmbed.js';
import { darkTheme, defaultTheme, themeToCssVars } from '../../src/theme.js';

afterEach(cleanup);

const pending = () => new Promise<string>(() => undefined);
// Node's URL: the DOM environment's own URL class does not make file URLs.
const css = readFileSync(fileURLToPath(new NodeURL('../../src/styles.css', import.meta.url)), 'utf8');

describe('themeToCssVars', () => {
  it('maps every token to a custom property, with defaults', () => {
    const vars = themeToCssVars();
    expect(vars['--pr-color-primary']).toBe(defaultTheme.colors.primary);
    expect(Object.keys(vars).filter((k) => k.startsWith('--pr-color-')).sort()).toEqual(
      ['background', 'border', 'danger', 'muted', 'on-primary', 'primary', 'scheme', 'success', 'surface', 'text', 'warning'].map((c) => `--pr-color-${c}`),
    );
    expect(vars['--pr-color-on-primary']).toBe('#ffffff');
    expect(vars['--pr-color-scheme']).toBe('light');
    expect(vars['--pr-density']).toBe('1');
    expect(vars['--pr-font-size-md']).toBe('14px');
  });

  it('applies overrides; numbers are pixels; compact density scales spacing', () => {
    const vars = themeToCssVars({
      colors: { primary: '#0a7cff', danger: 'rgb(200, 0, 0)' },
      fontFamily: 'Inter, sans-serif',
      fontSizes: { md: 15, sm: '0.8rem' },
      radius: 10,
      spacing: '6px',
      density: 'compact',
    });
    expect(vars).toMatchObject({
      '--pr-color-primary': '#0a7cff',
      '--pr-color-danger': 'rgb(200, 0, 0)',
      '--pr-color-text': defaultTheme.colors.text,
      '--pr-font-family': 'Inter, sans-serif',
      '--pr-font-size-md': '15px',
      '--pr-font-size-sm': '0.8rem',
      '--pr-radius': '10px',
      '--pr-space': '6px',
      '--pr-density': '0.75',
    });
  });
});

/** WCAG 2.x relative luminance of `#rrggbb`. */
function luminance(hex: string): number {
  const channel = (i: number) => {
    const v = Number.parseInt(hex.slice(i, i + 2), 16) / 255;
    return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
}

function contrast(a: string, b: string): number {
  const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (light + 0.05) / (dark + 0.05);
}

describe('darkTheme', () => {
  const { colors } = darkTheme;
  // Text colours on what they are shown on, as styles.css pairs them.
  const pairs: [string, string, string, string][] = [];
  for (const text of ['text', 'muted', 'primary', 'success', 'danger', 'warning'] as const) {
    for (const ground of ['background', 'surface'] as const) pairs.push([text, colors[text], ground, colors[ground]]);
  }
  pairs.push(['onPrimary', colors.onPrimary, 'primary', colors.primary], ['onPrimary', colors.onPrimary, 'danger', colors.danger]);

  it.each(pairs)('%s on %s meets WCAG AA (4.5:1)', (_text, fg, _ground, bg) => {
    expect(contrast(fg, bg)).toBeGreaterThanOrEqual(4.5);
  });

  it('computes contrast as WCAG does', () => {
    expect(contrast('#000000', '#ffffff')).toBeCloseTo(21, 5);
    expect(contrast('#767676', '#ffffff')).toBeCloseTo(4.54, 2);
    // The light defaults pass the same check.
    expect(contrast(defaultTheme.colors.text, defaultTheme.colors.background)).toBeGreaterThanOrEqual(4.5);
    expect(contrast(defaultTheme.colors.onPrimary, defaultTheme.colors.primary)).toBeGreaterThanOrEqual(4.5);
  });

  it('is a dark colour scheme, applied as custom properties', () => {
    const vars = themeToCssVars(darkTheme);
    expect(vars['--pr-color-scheme']).toBe('dark');
    expect(vars['--pr-color-background']).toBe(colors.background);
    expect(vars['--pr-color-on-primary']).toBe(colors.onPrimary);
    expect(luminance(colors.background)).toBeLessThan(luminance(colors.text));
  });
});

describe('<PushrailEmbed> theming', () => {
  it('puts the tokens on its root element, with the classNames hooks', () => {
    const { container } = render(
      <PushrailEmbed
        baseUrl="https://pushrail.test"
        fetchToken={pending}
        theme={{ colors: { primary: '#ff5a1f' }, radius: 4, density: 'compact' }}
        classNames={{ root: 'vendor-root' }}
      />,
    );
    const root = container.firstElementChild as HTMLElement;
    expect(root.className).toBe('pr-embed vendor-root');
    expect(root.style.getPropertyValue('--pr-color-primary')).toBe('#ff5a1f');
    expect(root.style.getPropertyValue('--pr-radius')).toBe('4px');
    expect(root.style.getPropertyValue('--pr-density')).toBe('0.75');
    expect(root.dataset.density).toBe('compact');
  });

  it('injects its stylesheet once, removes it with the last instance, and can be told not to', () => {
    const a = render(<PushrailEmbed baseUrl="https://x" fetchToken={pending} />);
    const b = render(<PushrailEmbed baseUrl="https://x" fetchToken={pending} />);
    expect(document.head.querySelectorAll('style#pushrail-embed-styles')).toHaveLength(1);
    a.unmount();
    expect(document.getElementById('pushrail-embed-styles')).not.toBeNull();
    b.unmount();
    expect(document.getElementById('pushrail-embed-styles')).toBeNull();
    render(<PushrailEmbed baseUrl="https://x" fetchToken={pending} injectStyles={false} />);
    expect(document.getElementById('pushrail-embed-styles')).toBeNull();
  });
});

/** `a, b:where(c, d)` → ['a', 'b:where(c, d)']: commas inside parentheses don't split. */
function splitSelectorList(list: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of list) {
    if (ch === '(') depth += 1;
    if (ch === ')') depth -= 1;
    if (ch === ',' && depth === 0) {
      parts.push(current.trim());
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current.trim());
  return parts;
}

/** Every selector of a stylesheet, at-rule blocks flattened; keyframe steps are skipped. */
function selectors(css: string): string[] {
  const text = css.replace(/\/\*[\s\S]*?\*\//g, '');
  const out: string[] = [];
  let i = 0;
  const walk = (end: number) => {
    while (i < end) {
      const open = text.indexOf('{', i);
      if (open < 0 || open >= end) return;
      const prelude = text.slice(i, open).trim();
      // Find the matching close brace.
      let depth = 1;
      let j = open + 1;
      while (depth > 0 && j < text.length) {
        if (text[j] === '{') depth += 1;
        else if (text[j] === '}') depth -= 1;
        j += 1;
      }
      if (prelude.startsWith('@media') || prelude.startsWith('@supports')) {
        i = open + 1;
        walk(j - 1);
      } else if (!prelude.startsWith('@keyframes')) {
        out.push(...splitSelectorList(prelude));
      }
      i = j;
    }
  };
  walk(text.length);
  return out;
}

describe('styles', () => {
  it('scopes every rule under .pr-embed: nothing leaks into the host page', () => {
    const all = selectors(css);
    expect(all.length).toBeGreaterThan(100);
    expect(all.filter((s) => !s.startsWith('.pr-embed'))).toEqual([]);
  });

  it('takes every colour from a theme variable (no fixed palette besides white text on fills and the backdrop)', () => {
    const literals = css.match(/#[0-9a-f]{3,8}\b/gi) ?? [];
    expect(new Set(literals.map((l) => l.toLowerCase()))).toEqual(new Set(['#ffffff', '#000000']));
  });
});
