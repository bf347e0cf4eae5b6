// README, "Live: subscriptions": events travel by NOTIFY on a channel per
// tenant, so every gateway process on the same database hears them. Two
// gateway processes on one server database: a subscriber on the second hears
// documents written through the first, and a subscriber of another tenant on
// the second hears none of them. (The embedded engine is served by one
// process per data directory, so it has one gateway: a visible skip there.)
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { parseConfig } from '../../src/config/config.ts';
import { signToken } from '../../src/http/token-signing.ts';
import { createTestDatabase, migrateTestDatabase, serverTest, SERVER_JWT_SECRET, type TestDatabase } from '../support/backend.ts';
import { startGatewayProcess, waitFor, type GatewayProcess } from '../support/processes.ts';

const tokenFor = (tenant: string): string => signToken(SERVER_JWT_SECRET, { role: 'sheratan_app', tenant, sub: 'alice', expiresIn: '1h' });

serverTest('one process serves an embedded data directory, so it has one gateway')(
  'a subscriber on one gateway process hears documents written through another on the same database; another tenant hears none',
  async () => {
    const database: TestDatabase = await createTestDatabase();
    const gateways: GatewayProcess[] = [];
    const clients: Client[] = [];
    try {
      await migrateTestDatabase(parseConfig({ ...database.env, LOG_LEVEL: 'silent' }));
      for (let i = 0; i < 2; i++) gateways.push(await startGatewayProcess({ ...database.env, LOG_LEVEL: 'silent' }));
      const [writer, listener] = gateways as [GatewayProcess, GatewayProcess];

      const heard: Record<string, string[]> = { across: [], elsewhere: [] };
      for (const tenant of Object.keys(heard)) {
        const client = createClient({
          url: `${listener.url.replace(/^http/, 'ws')}/graphql`,
          webSocketImpl: WebSocket,
          retryAttempts: 0,
          lazy: false,
          connectionParams: { authorization: `Bearer ${tokenFor(tenant)}` },
          onNonLazyError: () => undefined,
        });
        clients.push(client);
        client.subscribe<{ documentChanged: { document: { title: string } | null } }>(
          { query: 'subscription { documentChanged { document { title } } }' },
          {
            next: (value) => heard[tenant]!.push(value.data?.documentChanged.document?.title ?? JSON.stringify(value)),
            error: (err) => heard[tenant]!.push(`error: ${JSON.stringify(err)}`),
            complete: () => undefined,
          },
        );
      }

      // Documents written through the other gateway, one at a time, until the listener's subscriber has heard one
      // (its LISTEN may begin after the first writes): waiting on that condition, not on time.
      const written: Record<string, string[]> = { across: [], elsewhere: [] };
      const writeUntilHeard = (tenant: string) =>
        waitFor(
          async () => {
            const title = `${tenant}: written through the first gateway ${written[tenant]!.length}`;
            const res = await fetch(`${writer.url}/graphql`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', authorization: `Bearer ${tokenFor(tenant)}` },
              body: JSON.stringify({ query: `mutation { createDocument(input: { document: { title: ${JSON.stringify(title)} } }) { clientMutationId } }` }),
            });
            expect(res.status).toBe(200);
            written[tenant]!.push(title);
            await waitFor(() => heard[tenant]!.length > 0, 1_000, 'an event').catch(() => undefined);
            return heard[tenant]!.length > 0;
          },
          60_000,
          `the second gateway's subscriber of ${tenant} to hear a document written through the first`,
        );
      await writeUntilHeard('across');
      // The other tenant's subscriber is shown to be listening by hearing its own writes, and it heard only those.
      await writeUntilHeard('elsewhere');
      for (const tenant of Object.keys(heard)) {
        expect(heard[tenant]!.length).toBeGreaterThan(0);
        for (const title of heard[tenant]!) expect(written[tenant]).toContain(title);
      }
    } finally {
      for (const client of clients) await client.dispose();
      for (const gw of gateways) {
        gw.child.kill('SIGTERM');
        await gw.exited;
      }
      await database.drop();
    }
  },
  300_000,
);
