/** `berth/testing`: scripted scenarios against your application's runtime (docs/testing.md) and the adapter conformance suite (docs/adapters.md). */
export { runScenario, formatResult } from './runner.js';
export type { AppFactory, AppOptions, RunOptions, ScenarioResult } from './runner.js';
export { parseScenario, kindOf } from './scenario.js';
export type { Scenario, Step, ServerAssertion, MessageSpec, LostStream, TransportName } from './scenario.js';
export { Timeline } from './timeline.js';
export type { TimelineEntry } from './timeline.js';
export { memorySocketPair } from './memory-socket.js';
export { adapterConformance } from './adapter-conformance.js';
export type { ConformanceExpect, ConformanceFramework, ConformanceSuite } from './adapter-conformance.js';
export { historyConformance } from './history-conformance.js';
export type { ConformanceClock, HistorySuite } from './history-conformance.js';
export { eventually, settles } from './wait.js';
