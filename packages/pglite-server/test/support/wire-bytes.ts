// PostgreSQL wire-protocol bytes for tests that speak to a listener raw
// (malformed input, limits): packets built by hand, replies read by hand.
import net from 'node:net';

export const int32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

export const SSL_REQUEST = Buffer.concat([int32(8), int32(80877103)]);

/** A protocol 3.0 startup packet for `user` on database sheratan. */
export const startupPacket = (user: string): Buffer => {
  const body = Buffer.from(`user\0${user}\0database\0sheratan\0\0`);
  return Buffer.concat([int32(body.length + 8), int32(196608), body]);
};

/** A typed message: its type byte, length, body. */
export const message = (type: string, body: Buffer): Buffer => Buffer.concat([Buffer.from(type), int32(body.length + 4), body]);

/** The message (M field) of the first ErrorResponse in `reply`, or the whole reply as text. */
export const errorText = (reply: Buffer): string => /M([^\0]*)\0/.exec(reply.toString('latin1'))?.[1] ?? reply.toString('latin1');

/** A raw socket to `port`, once connected (its errors are the test's to read from its close). */
export function connectRaw(port: number, host: string): Promise<net.Socket> {
  return new Promise((resolve) => {
    const s = net.connect(port, host, () => resolve(s));
    s.on('error', () => undefined);
  });
}

/** Everything the listener sends `socket` until it closes it; `closedAfterMs` counts from this call. */
export function untilClosed(socket: net.Socket): Promise<{ reply: Buffer; closedAfterMs: number }> {
  const started = Date.now();
  const parts: Buffer[] = [];
  socket.on('data', (d) => parts.push(d));
  return new Promise((resolve) => socket.on('close', () => resolve({ reply: Buffer.concat(parts), closedAfterMs: Date.now() - started })));
}
