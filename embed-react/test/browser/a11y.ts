/**
 * Accessibility checks with axe-core, run inside the page on the embed's root element. A screen
 * passes with no serious or critical violation; every finding (any impact) is written to
 * `test-artifacts/embed/a11y/<screen>.json` for reading.
 */

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

import type { AxeResults, Result, RunOptions } from 'axe-core';
import type { Page } from 'playwright-core';

import { ARTIFACTS_DIR } from './harness.js';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const REPORTS = join(ARTIFACTS_DIR, 'a11y');

/** WCAG 2.2 A and AA, and axe's best practices. */
const OPTIONS: RunOptions = {
  runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
  resultTypes: ['violations', 'incomplete'],
};

/** Screens checked so far, for the closing test to see that none was skipped. */
export const checkedScreens: string[] = [];

function describe(violations: Result[]): string {
  return violations
    .map((v) => {
      const nodes = v.nodes.map((n) => `    ${n.target.join(' ')}: ${n.failureSummary?.replace(/\s+/g, ' ') ?? ''}`).join('\n');
      return `  [${v.impact ?? 'unknown'}] ${v.id}: ${v.help}\n${nodes}`;
    })
    .join('\n');
}

/**
 * The contrast of an element's text on its own background colour, for what axe leaves to a person
 * ("needs review"): a select's chevron is a background gradient, so axe can't tell the background
 * behind the text. `null` when the element has no opaque background colour of its own.
 */
function ownContrast(path: string[]): number | null {
  // A selector, or a path through shadow roots (host, …, element).
  let element = null as Element | null;
  for (const [i, selector] of path.entries()) {
    element = i === 0 ? document.querySelector(selector) : (element?.shadowRoot?.querySelector(selector) ?? null);
    if (!element) return null;
  }
  if (!element) return null;
  const style = getComputedStyle(element);
  // `rgb(r, g, b)`, `rgba(r, g, b, a)` or, from color-mix(), `color(srgb r g b / a)`.
  const parse = (text: string): [number, number, number, number] | null => {
    const srgb = text.startsWith('color(srgb');
    const numbers = (text.match(/[\d.]+/g) ?? []).map(Number);
    if (numbers.length < 3) return null;
    const [r = 0, g = 0, b = 0, a = 1] = numbers;
    return srgb ? [r * 255, g * 255, b * 255, a] : [r, g, b, a];
  };
  const fg = parse(style.color);
  const bg = parse(style.backgroundColor);
  if (!fg || !bg || bg[3] < 1 || fg[3] < 1) return null;
  const luminance = ([r, g, b]: [number, number, number, number]) => {
    const channel = (c: number) => {
      const v = c / 255;
      return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  };
  const [light, dark] = [luminance(fg), luminance(bg)].sort((x, y) => y - x) as [number, number];
  return (light + 0.05) / (dark + 0.05);
}

/**
 * Runs axe on the embed (`.pr-embed`, open dialogs included) and throws with the list of
 * serious and critical violations, if any. What axe could not decide ("incomplete") fails too
 * when serious or critical, except colour contrast on an element with a background image, which
 * is measured here on the element's own colours instead (at least 4.5:1).
 */
export async function expectAccessible(page: Page, screen: string, shadowPath?: string[]): Promise<void> {
  // The embed in the page, or inside a shadow root (`<pushrail-embed>`: ['pushrail-embed', '.pr-embed']).
  const context = shadowPath ? { include: [{ fromShadowDom: shadowPath }] } : { include: [['.pr-embed']] };
  const loaded = await page.evaluate(() => 'axe' in window);
  if (!loaded) await page.evaluate(AXE_SOURCE);
  const results = await page.evaluate(
    async ([context, options]) => {
      const axe = (window as unknown as { axe: { run: (context: unknown, options: unknown) => Promise<AxeResults> } }).axe;
      const found = await axe.run(context, options);
      // Only what can be sent back: the findings.
      return JSON.parse(JSON.stringify({ violations: found.violations, incomplete: found.incomplete })) as Pick<
        AxeResults,
        'violations' | 'incomplete'
      >;
    },
    [context, OPTIONS] as const,
  );
  mkdirSync(REPORTS, { recursive: true });
  writeFileSync(join(REPORTS, `${screen}.json`), `${JSON.stringify(results, null, 2)}\n`);
  checkedScreens.push(screen);
  const severe = (v: Result) => v.impact === 'serious' || v.impact === 'critical';
  const blocking = results.violations.filter(severe);
  for (const review of results.incomplete.filter(severe)) {
    const open: typeof review.nodes = [];
    for (const node of review.nodes) {
      const [first] = node.target;
      const path = node.target.length === 1 && Array.isArray(first) ? first : [node.target.join(' ')];
      const reason = (node.any[0]?.data as { messageKey?: string } | null | undefined)?.messageKey;
      if (review.id === 'color-contrast' && (reason === 'bgGradient' || reason === 'bgImage')) {
        const ratio = await page.evaluate(ownContrast, path);
        if (ratio !== null && ratio >= 4.5) continue;
      }
      open.push(node);
    }
    if (open.length) blocking.push({ ...review, help: `${review.help} (needs review)`, nodes: open });
  }
  if (blocking.length) {
    throw new Error(`${screen}: ${String(blocking.length)} serious or critical accessibility violations\n${describe(blocking)}`);
  }
}
