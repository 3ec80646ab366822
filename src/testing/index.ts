/** `berth/testing`: scripted scenarios against your application's runtime (docs/testing.md), and the conformance suites of adapters (docs/adapters.md) and history stores (docs/protocol.md). */
export { runScenario, formatResult } from './runner.js';
export type { AppFactory, AppOptions, RunOptions, ScenarioResult } from './runner.js';
export { parseScenario } from './scenario.js';
export type { Scenario, Step, ServerAssertion, MessageSpec, LostStream, TransportName } from './scenario.js';
export type { Timeline, TimelineEntry } from './timeline.js';
export { adapterConformance } from './adapter-conformance.js';
export type { ConformanceExpect, ConformanceFramework, ConformanceSuite } from './adapter-conformance.js';
export { historyConformance } from './history-conformance.js';
export type { ConformanceClock, HistorySuite } from './history-conformance.js';
