// Peer `postgraphile_plain`: PostGraphile 5 (the Amber preset, nothing of
// this store's plugins) exposing the plain `stable` SQL function
// sheratan_bench.search_chunks(q text, k int) that bench/run.ts creates —
// what a user would write without the store's search plugin. (Without a codec
// for pgvector's type PostGraphile leaves a `q vector` function out of the
// schema, so the vector travels as text and is cast inside, as a user would.)
import http from 'node:http';
import { postgraphile } from 'postgraphile';
import { PostGraphileAmberPreset } from 'postgraphile/presets/amber';
import { makePgService } from 'postgraphile/adaptors/pg';
import { grafserv } from 'postgraphile/grafserv/node';
import { claimsOf, listen, pool } from './common.ts';

const pgl = postgraphile({
  extends: [PostGraphileAmberPreset],
  pgServices: [makePgService({ pool, schemas: ['sheratan_bench'], pgSettingsForIntrospection: { role: 'sheratan_app' } })],
  grafast: {
    context(requestContext) {
      const req = (requestContext as { node?: { req: http.IncomingMessage } }).node?.req;
      const claims = req ? claimsOf(req) : null;
      return {
        pgSettings: claims ? { role: 'sheratan_app', 'jwt.claims.tenant': claims.tenant, 'jwt.claims.sub': claims.sub } : { role: 'sheratan_anonymous' },
      };
    },
  },
  grafserv: { graphqlPath: '/graphql', graphiql: false },
});
const server = http.createServer();
const serv = pgl.createServ(grafserv);
await serv.addTo(server);
await pgl.getSchema();
listen(server);
