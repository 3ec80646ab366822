/**
 * What happened during a scenario, per client: what it sent and received,
 * how the server saw its connection change, how it closed, and for a
 * `berth/client` client its states and resumes. Printed when a
 * scenario fails, and writable as a Mermaid sequence diagram.
 */

/** What an entry of the timeline records. */
export type TimelineKind =
  | 'connect'
  | 'refused'
  | 'sent'
  | 'received'
  | 'server'
  | 'closed'
  | 'paused'
  | 'resumed'
  | 'dropped'
  | 'advanced'
  | 'broadcast'
  /** A `berth/client` client's state changed (`open`, `reconnecting`, `connecting` …). */
  | 'state'
  /** A `berth/client` client's welcome, and its `resumed` (recovered or not, what was lost). */
  | 'session'
  /** A dropped client's network came back. */
  | 'network';

/** One thing a client (or the server) did or saw. */
export interface TimelineEntry {
  /** Milliseconds since the scenario started (real time). */
  readonly at: number;
  /** A client name, or `server`. */
  readonly who: string;
  readonly kind: TimelineKind;
  readonly detail: string;
}

const MAX_DETAIL = 80;

/** A scenario run's timeline (`ScenarioResult.timeline`): `format()` prints it, `toMermaid(title)` draws it. */
export class Timeline {
  readonly entries: TimelineEntry[] = [];
  readonly #started = performance.now();

  add(who: string, kind: TimelineKind, detail = ''): void {
    const short = detail.length > MAX_DETAIL ? `${detail.slice(0, MAX_DETAIL - 1)}…` : detail;
    this.entries.push({ at: performance.now() - this.#started, who, kind, detail: short });
  }

  /** One block per client, in time order. */
  format(): string {
    const names = [...new Set(this.entries.map((entry) => entry.who))];
    return names
      .map((name) => {
        const lines = this.entries
          .filter((entry) => entry.who === name)
          .map((entry) => `    ${entry.at.toFixed(1).padStart(8)} ms  ${entry.kind.padEnd(9)} ${entry.detail}`);
        return `  ${name}\n${lines.join('\n')}`;
      })
      .join('\n');
  }

  /** The timeline as a Mermaid `sequenceDiagram`: clients on the left, the server on the right. */
  toMermaid(title: string): string {
    const names = [...new Set(this.entries.map((entry) => entry.who).filter((who) => who !== 'server'))];
    const id = (name: string) => `c_${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
    const text = (detail: string) => detail.replace(/[;#:]/g, ' ').replace(/\s+/g, ' ').trim() || ' ';
    const lines = [
      'sequenceDiagram',
      `  title ${text(title)}`,
      ...names.map((name) => `  participant ${id(name)} as ${text(name)}`),
      '  participant server',
    ];
    for (const entry of this.entries) {
      const who = entry.who === 'server' ? 'server' : id(entry.who);
      switch (entry.kind) {
        case 'sent':
        case 'connect':
          lines.push(`  ${who}->>server: ${entry.kind === 'connect' ? 'connect' : text(entry.detail)}`);
          break;
        case 'received':
          lines.push(`  server->>${who}: ${text(entry.detail)}`);
          break;
        case 'closed':
        case 'refused':
          lines.push(`  server-x${who}: ${entry.kind} ${text(entry.detail)}`);
          break;
        default:
          lines.push(`  Note over ${who}: ${entry.kind} ${text(entry.detail)}`);
      }
    }
    return `${lines.join('\n')}\n`;
  }
}
