/**
 * A client child: holds its share of a scenario's connections (receiver.ts),
 * runs churn cycles (churn.ts), or holds real clients that drop and resume
 * (resume.ts) or real clients of a cluster whose node goes away
 * (cluster-resume.ts) against the server children, as the
 * orchestrator asks over IPC. Started by bench/children.ts as
 * `node --import tsx bench/client-process.ts <system>`; it dies with its
 * parent's IPC channel.
 */
import { join } from 'node:path';
import { churn } from './clients/churn.js';
import { ClusterResumeClients } from './clients/cluster-resume.js';
import { profiling, startProfile, stopProfile } from './cpu-profile.js';
import { berthV1Dialect } from './clients/berth-dialect.js';
import { plainDialect, type Dialect } from './clients/dialect.js';
import { Receiver } from './clients/receiver.js';
import { ResumeClients } from './clients/resume.js';
import { socketIoDialect } from './clients/socketio-dialect.js';
import { speaksSocketIo, type ClientCommand, type ClientReply, type SystemName } from './protocol.js';

const system = process.argv[2] as SystemName;
const dialect: Dialect = speaksSocketIo(system) ? socketIoDialect : plainDialect;
process.on('disconnect', () => process.exit(0));

let receiver: Receiver | undefined;
let resumers: ResumeClients | undefined;
let cluster: ClusterResumeClients | undefined;

const cpuUs = () => {
  const { user, system: sys } = process.cpuUsage();
  return user + sys;
};

function need(): Receiver {
  if (receiver === undefined) throw new Error('no connections yet: send connect first');
  return receiver;
}

function needCluster(): ClusterResumeClients {
  if (cluster === undefined) throw new Error('no cluster clients yet: send cr-open first');
  return cluster;
}

function needResumers(): ResumeClients {
  if (resumers === undefined) throw new Error('no resume clients yet: send resume-open first');
  return resumers;
}

async function handle(command: ClientCommand): Promise<ClientReply> {
  switch (command.type) {
    case 'connect':
      receiver?.destroyAll();
      if (command.v1 === true && system !== 'berth') throw new Error(`${system} does not speak berth.v1`);
      receiver = new Receiver(command.port, command.v1 === true ? berthV1Dialect : dialect, command.groups, command.compression);
      return { id: command.id, type: 'connect', report: await receiver.connect(command.concurrency) };
    case 'expect':
      need().expect(command.perRoom);
      return { id: command.id, type: 'expect', cpuUs: cpuUs() };
    case 'wait':
      return { id: command.id, type: 'wait', report: await need().wait(command.timeoutMs) };
    case 'report':
      return { id: command.id, type: 'report', report: need().report() };
    case 'churn':
      return {
        id: command.id,
        type: 'churn',
        report: await churn(command.port, dialect, command.cycles, command.concurrency, command.timeoutMs),
      };
    case 'resume-open': {
      if (system !== 'berth' && system !== 'socketio') throw new Error(`${system} has no resume`);
      resumers?.closeAll();
      resumers = new ResumeClients(system, command.port, command.groups, command.messages);
      return { id: command.id, type: 'resume-open', report: await resumers.open(command.concurrency) };
    }
    case 'resume-received':
      return { id: command.id, type: 'resume-received', report: await needResumers().waitReceived(command.upTo, command.timeoutMs) };
    case 'resume-drop':
      // `--cpu-prof DIR`: the clients' side of the storm too, from the drop until all are back.
      if (process.env.BENCH_CPU_PROF) await startProfile();
      return { id: command.id, type: 'resume-drop', report: needResumers().drop() };
    case 'resume-back': {
      const report = await needResumers().waitBack(command.timeoutMs);
      if (profiling()) await stopProfile(join(process.env.BENCH_CPU_PROF!, `resume-storm-client-${system}-${process.pid}.cpuprofile`));
      return { id: command.id, type: 'resume-back', report };
    }
    case 'resume-report':
      return { id: command.id, type: 'resume-report', report: needResumers().report(command.upTo) };
    case 'cr-open': {
      if (system !== 'berth' && system !== 'socketio') throw new Error(`${system} has no resume`);
      cluster?.closeAll();
      cluster = new ClusterResumeClients(system, command.ports, command.groups, command.publishers, command.messages);
      return { id: command.id, type: 'cr-open', report: await cluster.open(command.concurrency) };
    }
    case 'cr-received':
      return { id: command.id, type: 'cr-received', report: await needCluster().waitReceived(command.upTo, command.timeoutMs) };
    case 'cr-back':
      return {
        id: command.id,
        type: 'cr-back',
        report: await needCluster().waitBack(command.node, command.at, command.drain, command.timeoutMs),
      };
    case 'cr-report':
      return { id: command.id, type: 'cr-report', report: needCluster().report(command.bounds) };
  }
}

process.on('message', (command: ClientCommand) => {
  handle(command).then(
    (reply) => process.send!(reply),
    (error: unknown) =>
      process.send!({
        id: command.id,
        type: 'error',
        message: error instanceof Error ? (error.stack ?? error.message) : String(error),
      } satisfies ClientReply),
  );
});
process.send!({ id: 0, type: 'ready' } satisfies ClientReply);
