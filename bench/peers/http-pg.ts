// Peer `http_pg`: a bare HTTP JSON endpoint over pg, the floor for any HTTP
// API over this query. POST /search {"embedding": [...], "k": 10} → {"matches": [{id, distance}]};
// GET (any path) answers {} once the token is checked.
import http from 'node:http';
import { toSql } from 'pgvector/pg';
import { body, claimsOf, listen, search } from './common.ts';

listen(
  http.createServer((req, res) => {
    void (async () => {
      const claims = claimsOf(req);
      if (!claims) return res.writeHead(401).end();
      // GET /ping: the token checked and nothing else (bench:floor's HTTP floor).
      if (req.method === 'GET') return res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      const { embedding, k } = await body(req);
      const matches = await search(claims, toSql(embedding as number[]) as string, Number(k ?? 10));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ matches }));
    })().catch((err: Error) => res.writeHead(500).end(err.message));
  }),
);
