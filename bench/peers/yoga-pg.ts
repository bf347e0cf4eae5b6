// Peer `yoga_pg`: a hand-written GraphQL server (graphql-yoga) with one
// resolver over pg running the same SQL, switching role and claims per request;
// the vector printed by pgvector's own `toSql`, as a user of pg + pgvector would.
import http from 'node:http';
import { createSchema, createYoga } from 'graphql-yoga';
import { toSql } from 'pgvector/pg';
import { claimsOf, listen, search, type Claims } from './common.ts';

const yoga = createYoga<{ req: http.IncomingMessage }>({
  graphqlEndpoint: '/graphql',
  logging: false,
  schema: createSchema<{ req: http.IncomingMessage }>({
    typeDefs: /* GraphQL */ `
      type Match {
        id: ID!
        distance: Float!
      }
      type Query {
        search(embedding: [Float!]!, k: Int = 10): [Match!]!
      }
    `,
    resolvers: {
      Query: {
        search: (_root: unknown, args: { embedding: number[]; k: number }, ctx: { req: http.IncomingMessage }) => {
          const claims: Claims | null = claimsOf(ctx.req);
          if (!claims) throw new Error('unauthenticated');
          return search(claims, toSql(args.embedding) as string, args.k);
        },
      },
    },
  }),
});

listen(http.createServer((req, res) => void yoga(req, res, { req })));
