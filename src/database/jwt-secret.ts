// The secret tokens are signed with: JWT_SECRET, or (outside production) one
// generated once per embedded data directory. Its own module, so that the operations that need
// it (token, backup, restore) do not import the gateway.
import type { Config } from '../config/config.ts';
import { dataDirSecret } from '@sheratan/pglite-server';

export function effectiveJwtSecret(config: Config): string | undefined {
  // Production has no generated secret: its gateway refuses to start without JWT_SECRET (assertReadyToServe).
  if (config.jwtSecret || config.production) return config.jwtSecret;
  return config.databaseUrl ? undefined : dataDirSecret(config.dataDir, 'jwt-secret');
}
