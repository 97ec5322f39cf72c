/**
 * A TCP relay to a local server that a test can disturb the way networks do: `drop()` ends
 * every open connection; while `paused` new connections are closed at once (a restart); while
 * `muted` nothing flows from the server to the client, yet every connection stays open (a
 * half-dead link, a stalled proxy).
 */
import net from 'node:net';

export interface TcpRelay {
  url: string;
  state: { paused: boolean; muted: boolean };
  drop(): void;
  close(): Promise<void>;
}

export async function startTcpRelay(target: string): Promise<TcpRelay> {
  const { port } = new URL(target);
  const sockets = new Set<net.Socket>();
  const state = { paused: false, muted: false };
  const server = net.createServer((client) => {
    if (state.paused) return void client.destroy();
    const upstream = net.connect(Number(port), '127.0.0.1');
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      if (!state.muted) client.write(chunk);
    });
    upstream.on('end', () => client.end());
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => (sockets.delete(a), b.destroy()));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    state,
    drop: () => sockets.forEach((s) => s.destroy()),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
