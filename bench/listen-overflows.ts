/**
 * The kernel's count of connections dropped because a listening socket's
 * accept queue was full (`TcpExtListenOverflows` in /proc/net/netstat). It is
 * machine-wide: a run reads it before and after, and says how many happened
 * meanwhile, whoever caused them. A dropped handshake costs its client a SYN
 * retransmission (1 s, then 2, 4, 8 s…), which is what long reconnect tails
 * on loopback usually are.
 */
import { readFileSync } from 'node:fs';

/** The counter now; undefined where /proc/net/netstat is not there (not Linux). */
export function listenOverflows(): number | undefined {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const names = lines[i]!.split(/\s+/);
      const values = lines[i + 1]!.split(/\s+/);
      const at = names.indexOf('ListenOverflows');
      if (names[0] === 'TcpExt:' && at !== -1) return Number(values[at]);
    }
  } catch {
    // Not Linux: nothing to say.
  }
  return undefined;
}
