// The engine's face for the gateway: sessions over the in-process channel
// (channel.ts), for the gateway in the process that runs the engine (tools
// use the other face, connection strings to the listener). It has the shape
// of src/graphql/pipelined-client.ts's Transport, which composes it into
// PostGraphile's `withPgClient`; the engine makes each session's login its
// session user, as for a socket login, so Postgres checks every role switch.
import { Readable } from 'node:stream';
import { parse } from 'pg-protocol';
import type { ChannelClient } from './channel.ts';
import { noPrepared, type BackendMessage, type Prepared, type Transport } from './transport.ts';

/**
 * Sessions logging in as `user`; a batch that cannot have the backend within
 * `waitMs` (another client holds it) fails with code BACKEND_BUSY, having run
 * nothing. Sessions are reused, each with the statements it has prepared.
 */
export function channelTransport(channel: ChannelClient, user: string, waitMs?: number): Transport {
  const idle: Array<{ sid: number; prepared: Prepared }> = [];
  return {
    async session() {
      const s = idle.pop() ?? { sid: channel.newSession(), prepared: noPrepared() };
      return {
        prepared: s.prepared,
        async run(batch, onMessage) {
          const reply = await channel.send(s.sid, user, batch, waitMs);
          await parse(Readable.from([reply]), (msg) => onMessage(msg as unknown as BackendMessage));
        },
        release: () => idle.push(s),
      };
    },
  };
}
