/** `berth/nats`: the NATS adapter, apart so that `nats` is only loaded by those who use it. */
export { createNatsAdapter } from './cluster/nats/adapter.js';
export type { NatsAdapterOptions } from './cluster/nats/options.js';
export type { ClusterAdapterOptions } from './cluster/core/options.js';
export { tokenOf } from './cluster/nats/names.js';
