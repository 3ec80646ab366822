import mittModule from 'mitt';
import type { Emitter, EventType } from 'mitt';

type MittFactory = <Events extends Record<EventType, unknown>>() => Emitter<Events>;

/**
 * mitt's typings describe its CommonJS build, whose default export TypeScript
 * sees as `{ default }`; Node loads its ESM build, whose default export is the
 * function. This accepts either.
 */
export const mitt: MittFactory = (mittModule as unknown as { default?: MittFactory }).default ?? (mittModule as unknown as MittFactory);
