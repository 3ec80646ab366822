/**
 * A TCP proxy on loopback between a client and a server, that can cut the link the way networks do:
 * `cut('fin')` and `cut('rst')` end both sides, `cut('half-open')` drops the client's side while the
 * server's side stays open and silent, as when a client vanishes without a FIN reaching the server.
 * `retarget(port)` sends later connections to another server, as a load balancer does when it moves a client.
 */
import net from 'node:net';
import { afterEach } from 'vitest';

export interface TcpProxy {
  /** `ws://127.0.0.1:<proxy port><path>`. */
  url(path?: string): string;
  /** Cuts every link open now; later connections go through as before. */
  cut(how: 'fin' | 'rst' | 'half-open'): void;
  /** Later connections go to `127.0.0.1:targetPort`; the links open now are left as they are (`cut` them to move them). */
  retarget(targetPort: number): void;
  close(): Promise<void>;
}

const open = new Set<TcpProxy>();

afterEach(async () => {
  await Promise.all([...open].map((proxy) => proxy.close()));
  open.clear();
});

/** A proxy to `127.0.0.1:targetPort`, closed after the test. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  let target = targetPort;
  const links = new Set<{ client: net.Socket; server: net.Socket }>();
  const stranded = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    const link = { client, server: upstream };
    links.add(link);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      links.delete(link);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const proxy: TcpProxy = {
    url: (path = '/') => `ws://127.0.0.1:${port}${path}`,
    retarget(targetPort) {
      target = targetPort;
    },
    cut(how) {
      for (const link of [...links]) {
        links.delete(link);
        const { client, server: upstream } = link;
        client
          .removeAllListeners('close')
          .removeAllListeners('error')
          .on('error', () => {});
        upstream
          .removeAllListeners('close')
          .removeAllListeners('error')
          .on('error', () => {});
        client.unpipe(upstream);
        upstream.unpipe(client);
        if (how === 'half-open') {
          // The server's side stays open and hears nothing more: what it writes goes nowhere.
          upstream.on('data', () => {});
          stranded.add(upstream);
          client.resetAndDestroy();
        } else if (how === 'rst') {
          client.resetAndDestroy();
          upstream.resetAndDestroy();
        } else {
          client.end();
          upstream.end();
        }
      }
    },
    async close() {
      for (const { client, server: upstream } of links) {
        client.destroy();
        upstream.destroy();
      }
      for (const socket of stranded) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  open.add(proxy);
  return proxy;
}
