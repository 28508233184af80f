/**
 * What Chrome exposes to assistive technology: the accessibility tree, read over CDP (Accessibility.getFullAXTree),
 * the way a screen reader reads it, rather than DOM attributes. Closed shadow roots and iframes are included: each
 * frame's tree is read on its own and its nodes are tagged with the frame.
 */
import type { CDPSession, Frame, Page } from 'playwright-core';

export interface AxNode {
  /** Chrome's role name (for example `image`, `button`, `status`, `none`, `generic`). */
  role: string;
  /** The computed accessible name, as a screen reader announces it. */
  name: string;
  /**
   * Where the name came from: the attribute or native source Chrome used (`alt`, `aria-label`, `aria-labelledby`,
   * `title`, `labelfor`, `labelwrapped`, `value`; `type` for an <input type=image>'s default "Submit"), '' for none.
   */
  nameFrom: string;
  description: string;
  /** Pruned from the tree (aria-hidden, presentational, display:none...): a screen reader never meets it. */
  ignored: boolean;
  /** The element's attributes (`data-test`, `src`...), when the node has a DOM element. */
  attrs: Record<string, string>;
  /** The text of the node's descendants, in tree order: what a live region speaks. */
  text: string;
  frameUrl: string;
}

interface RawAxNode {
  nodeId: string;
  ignored: boolean;
  role?: { value?: string };
  name?: { value?: string; sources?: RawNameSource[] };
  description?: { value?: string };
  childIds?: string[];
  backendDOMNodeId?: number;
}

interface RawNameSource {
  type: string;
  attribute?: string;
  nativeSource?: string;
  value?: { value?: unknown };
  superseded?: boolean;
}

/** The source that gave the name: the first one, not superseded, with a non-empty value. */
function nameSource(n: RawAxNode): string {
  const s = (n.name?.sources ?? []).find((x) => !x.superseded && typeof x.value?.value === 'string' && x.value.value !== '');
  return s ? (s.attribute ?? s.nativeSource ?? s.type) : '';
}

const sessions = new WeakMap<Page, CDPSession>();

async function cdp(page: Page): Promise<CDPSession> {
  let s = sessions.get(page);
  if (!s) {
    s = await page.context().newCDPSession(page);
    await s.send('DOM.enable');
    await s.send('Accessibility.enable');
    sessions.set(page, s);
  }
  return s;
}

/** The frame id CDP knows a playwright frame by (the main frame's is the page target's). */
async function frameIds(s: CDPSession): Promise<Map<string, string>> {
  const { frameTree } = (await s.send('Page.getFrameTree')) as unknown as {
    frameTree: { frame: { id: string; url: string }; childFrames?: unknown[] };
  };
  const out = new Map<string, string>();
  const walk = (t: { frame: { id: string; url: string }; childFrames?: unknown[] }) => {
    out.set(t.frame.url, t.frame.id);
    for (const c of t.childFrames ?? []) walk(c as typeof t);
  };
  walk(frameTree);
  return out;
}

async function attributesOf(s: CDPSession, backendNodeId: number | undefined): Promise<Record<string, string>> {
  if (backendNodeId === undefined) return {};
  try {
    const { node } = (await s.send('DOM.describeNode', { backendNodeId })) as { node: { attributes?: string[] } };
    const a = node.attributes ?? [];
    const out: Record<string, string> = {};
    for (let i = 0; i + 1 < a.length; i += 2) out[a[i]] = a[i + 1];
    return out;
  } catch {
    return {};
  }
}

/**
 * The accessibility tree of a page (and of its same-process frames), every node with its role, name and element
 * attributes. `where` keeps only nodes whose element matches (by attributes), to spare describeNode calls.
 */
export async function axTree(page: Page, opts: { frames?: Frame[]; where?: (n: RawAxNodeView) => boolean } = {}): Promise<AxNode[]> {
  const s = await cdp(page);
  const ids = await frameIds(s);
  const frames = opts.frames ?? page.frames();
  const out: AxNode[] = [];
  for (const f of frames) {
    const frameId = ids.get(f.url());
    let nodes: RawAxNode[];
    try {
      ({ nodes } = await s.send('Accessibility.getFullAXTree', frameId ? { frameId } : {}));
    } catch {
      continue; // an out-of-process frame: its own target, not read here
    }
    const byId = new Map(nodes.map((n) => [n.nodeId, n]));
    const textOf = (n: RawAxNode): string => {
      if (n.role?.value === 'StaticText' || n.role?.value === 'InlineTextBox')
        return n.role.value === 'StaticText' ? (n.name?.value ?? '') : '';
      return (n.childIds ?? [])
        .map((c) => byId.get(c))
        .filter((c): c is RawAxNode => !!c)
        .map(textOf)
        .join('');
    };
    for (const n of nodes) {
      const view: RawAxNodeView = { role: n.role?.value ?? '', name: n.name?.value ?? '', ignored: n.ignored };
      if (opts.where && !opts.where(view)) continue;
      out.push({
        ...view,
        description: n.description?.value ?? '',
        nameFrom: nameSource(n),
        attrs: await attributesOf(s, n.backendDOMNodeId),
        text: textOf(n),
        frameUrl: f.url(),
      });
    }
  }
  return out;
}

export interface RawAxNodeView {
  role: string;
  name: string;
  ignored: boolean;
}

/**
 * Nodes whose element carries attribute `attr`, by its value (the first frame that has it wins). `where` keeps only
 * nodes that match (by role, name, ignored) before their attributes are read.
 */
export async function axByAttribute(
  page: Page,
  attr: string,
  opts: { frames?: Frame[]; where?: (n: RawAxNodeView) => boolean } = {},
): Promise<Map<string, AxNode>> {
  const nodes = await axTree(page, opts);
  const out = new Map<string, AxNode>();
  for (const n of nodes) {
    const id = n.attrs[attr];
    if (id && !out.has(id)) out.set(id, n);
  }
  return out;
}

/** Nodes whose element carries `data-test`, by that id (the first frame that has it wins). */
export function axByTestId(page: Page, frames?: Frame[]): Promise<Map<string, AxNode>> {
  return axByAttribute(page, 'data-test', { frames });
}

/** The text every live region with `role` (status, alert...) speaks now, in tree order. */
export async function axLiveText(page: Page, role = 'status'): Promise<string[]> {
  const nodes = await axTree(page, { frames: [page.mainFrame()], where: (n) => n.role === role && !n.ignored });
  return nodes.map((n) => n.text.trim());
}

/**
 * The node that has the keyboard focus in the main frame (inside closed shadow roots too), as a screen reader
 * reports it, or null when none does. Chrome marks the document's root focused as well: the deepest one wins.
 */
export async function axFocused(page: Page): Promise<{ role: string; name: string } | null> {
  const s = await cdp(page);
  const { nodes } = (await s.send('Accessibility.getFullAXTree')) as unknown as {
    nodes: (RawAxNode & { properties?: { name: string; value?: { value?: unknown } }[] })[];
  };
  const byId = new Map(nodes.map((n) => [n.nodeId, n]));
  const isFocused = (n: (typeof nodes)[number]) => n.properties?.some((p) => p.name === 'focused' && p.value?.value === true) ?? false;
  const focusedBelow = (n: (typeof nodes)[number]): boolean =>
    (n.childIds ?? []).some((c) => {
      const child = byId.get(c);
      return !!child && (isFocused(child) || focusedBelow(child));
    });
  const n = nodes.find((n) => isFocused(n) && !focusedBelow(n));
  return n ? { role: n.role?.value ?? '', name: n.name?.value ?? '' } : null;
}
