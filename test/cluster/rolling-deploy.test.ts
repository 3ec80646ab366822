/**
 * A rolling deploy under load, as `examples/rolling-deploy.ts` runs it: three
 * node processes with durable streams on a Redis of the test's own, behind a
 * load balancer; every node closed and started again in turn while each
 * publishes; every client trusts resume and never rejoins.
 */
import { describe, expect, it } from 'vitest';
import { rollingDeploy } from '../../examples/rolling-deploy.js';
import { startRedis } from '../helpers/redis.js';

describe('rolling deploy with durable streams', () => {
  it('every node restarted in turn under load: every client gets every message once, in order, and every resume recovers', async () => {
    const redis = await startRedis();
    const report = await rollingDeploy({ redisUrl: redis.url, nodes: 3, clients: 12, settleMs: 1200 });
    expect(report.expected).toBeGreaterThan(3000);
    expect({ lost: report.lost, duplicated: report.duplicated, outOfOrder: report.outOfOrder }).toEqual({
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
    });
    expect(report.received).toBe(report.expected);
    // Every client's node was restarted at least once: each came back, and each came back whole.
    expect(report.resumes.notRecovered).toBe(0);
    expect(report.resumes.recovered).toBeGreaterThanOrEqual(report.clients);
  }, 60_000);
});
