/**
 * Writes `diagrams/<machine>.mmd` (Mermaid `stateDiagram-v2`) for every
 * machine in `machines/`, and `diagrams/README.md` embedding them, by walking
 * each machine's state nodes. Run with `npm run diagrams`; a test fails when
 * the committed files differ from what this produces.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { AnyStateMachine, StateNode } from 'xstate';
import { clientMachine } from '../machines/client.machine.js';
import { connectionMachine } from '../machines/connection.machine.js';
import { sessionMachine } from '../machines/session.machine.js';
import { supervisorMachine } from '../machines/supervisor.machine.js';

/** The machines drawn, by file name in `machines/`. */
export const machines: ReadonlyArray<{ file: string; machine: AnyStateMachine }> = [
  { file: 'connection.machine.ts', machine: connectionMachine },
  { file: 'supervisor.machine.ts', machine: supervisorMachine },
  { file: 'client.machine.ts', machine: clientMachine },
  { file: 'session.machine.ts', machine: sessionMachine },
];

// The walk reads structure only, whatever the context and event types.
type AnyNode = StateNode<any, any>;

interface Transition {
  readonly eventType: string;
  readonly target?: ReadonlyArray<AnyNode>;
  readonly guard?: unknown;
  readonly actions: ReadonlyArray<unknown>;
  readonly delay?: string | number;
}

const mermaidId = (node: AnyNode) => node.id.replace(/[^A-Za-z0-9_]/g, '_');

/** `closeSocket`, `respond(ok=true)`; XState's own actions (assign, raise) are left out. */
function actionLabel(action: unknown): string | undefined {
  if (typeof action === 'string') return action.startsWith('xstate.') ? undefined : action;
  if (typeof action !== 'object' || action === null || !('type' in action)) return undefined;
  const { type, params } = action as { type: unknown; params?: unknown };
  if (typeof type !== 'string' || type.startsWith('xstate.')) return undefined;
  if (typeof params !== 'object' || params === null) return type;
  const values = Object.entries(params).map(([key, value]) => `${key}=${String(value)}`);
  return `${type}(${values.join(', ')})`;
}

function guardLabel(guard: unknown): string | undefined {
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'object' && guard !== null && 'type' in guard) return String((guard as { type: unknown }).type);
  return guard === undefined ? undefined : 'guarded';
}

function label(trigger: string, transition: Transition): string {
  const guard = guardLabel(transition.guard);
  const actions = transition.actions.map(actionLabel).filter((name) => name !== undefined);
  return [trigger, guard && `[${guard}]`, actions.length > 0 && `/ ${actions.join(', ')}`].filter(Boolean).join(' ');
}

/** Every outgoing transition of a node, delayed ones named by their delay rather than their internal event. */
function transitionsOf(node: AnyNode): Array<{ trigger: string; transition: Transition }> {
  const delayed = new Set((node.after as Transition[]).map((transition) => transition.eventType));
  const list: Array<{ trigger: string; transition: Transition }> = [];
  for (const [eventType, transitions] of node.transitions as Map<string, Transition[]>) {
    if (delayed.has(eventType)) continue;
    for (const transition of transitions) list.push({ trigger: eventType, transition });
  }
  for (const transition of node.after as Transition[]) list.push({ trigger: `after ${String(transition.delay)}`, transition });
  for (const transition of (node.always ?? []) as Transition[]) list.push({ trigger: 'always', transition });
  return list;
}

function renderNode(node: AnyNode, depth: number, lines: string[]): void {
  const pad = '  '.repeat(depth);
  const children = Object.values(node.states) as AnyNode[];
  for (const child of children) {
    const id = mermaidId(child);
    if (isComposite(child)) {
      lines.push(`${pad}state "${child.key}" as ${id} {`);
      renderNode(child, depth + 1, lines);
      lines.push(`${pad}}`);
    } else {
      lines.push(`${pad}state "${child.key}" as ${id}`);
    }
    // Mermaid allows a description line on simple states only; a composite state's entry actions go in its note.
    const entry = entryOf(child);
    if (entry !== undefined && !isComposite(child)) lines.push(`${pad}${id} : ${entry}`);
  }
  const initial = node.initial?.target?.[0] as AnyNode | undefined;
  if (initial !== undefined) lines.push(`${pad}[*] --> ${mermaidId(initial)}`);
  for (const child of children) {
    const from = mermaidId(child);
    for (const { trigger, transition } of transitionsOf(child)) {
      const to = transition.target?.[0] ? mermaidId(transition.target[0]) : from;
      lines.push(`${pad}${from} --> ${to} : ${label(trigger, transition)}`);
    }
    if (child.type === 'final') lines.push(`${pad}${from} --> [*]`);
  }
  for (const child of children) {
    const text = [isComposite(child) ? entryOf(child) : undefined, child.description].filter((line) => line !== undefined && line !== '');
    // The block form: in the one-line form a colon inside the text ends the note.
    if (text.length > 0) lines.push(`${pad}note right of ${mermaidId(child)}`, ...text.map((line) => `${pad}  ${line}`), `${pad}end note`);
  }
}

const isComposite = (node: AnyNode) => Object.keys(node.states).length > 0;

/** `entry / sendPing`, or undefined without entry actions of our own. */
function entryOf(node: AnyNode): string | undefined {
  const entry = (node.entry as unknown[]).map(actionLabel).filter((name) => name !== undefined);
  return entry.length > 0 ? `entry / ${entry.join(', ')}` : undefined;
}

/** The Mermaid source of one machine; its first line says it is generated. */
export function renderMachine(file: string, machine: AnyStateMachine): string {
  const root = machine.root as AnyNode;
  const lines = [`%% Generated by \`npm run diagrams\` from machines/${file}; do not edit.`, 'stateDiagram-v2', '  direction LR'];
  renderNode(root, 1, lines);
  // Transitions on the machine itself apply in every state that is still running.
  const global = transitionsOf(root).map(({ trigger, transition }) => label(trigger, transition));
  if (global.length > 0) {
    const initial = mermaidId(root.initial.target[0] as AnyNode);
    lines.push(`  note left of ${initial}`, '    In every state until final:', ...global.map((text) => `    ${text}`), '  end note');
  }
  return `${lines.join('\n')}\n`;
}

/** `diagrams/README.md`: every diagram embedded so a code host renders it. */
export function renderIndex(): string {
  const sections = machines.map(({ file, machine }) => {
    const name = file.replace(/\.ts$/, '');
    const description = machine.root.description ? `${machine.root.description}\n\n` : '';
    return `## ${machine.id}\n\n${description}Source: [\`machines/${file}\`](../machines/${file}) · [\`${name}.mmd\`](${name}.mmd)\n\n\`\`\`mermaid\n${renderMachine(file, machine)}\`\`\`\n`;
  });
  return `<!-- Generated by \`npm run diagrams\`; do not edit. -->\n# berth's machines\n\n${sections.join('\n')}`;
}

/** Every generated file: path relative to the project root → content. */
export function renderAll(): Map<string, string> {
  const files = new Map<string, string>();
  for (const { file, machine } of machines) files.set(`diagrams/${file.replace(/\.ts$/, '')}.mmd`, renderMachine(file, machine));
  files.set('diagrams/README.md', renderIndex());
  return files;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = new URL('../', import.meta.url);
  mkdirSync(new URL('diagrams/', root), { recursive: true });
  for (const [path, content] of renderAll()) {
    writeFileSync(new URL(path, root), content);
    console.log(`wrote ${path}`);
  }
}
