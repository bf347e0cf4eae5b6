import { parseArgs } from 'node:util';
import { ConfigError } from '../config/config.ts';
import { effectiveJwtSecret } from '../database/jwt-secret.ts';
import { API_ROLES, APP_ROLE, type ApiRole } from '../config/roles.ts';
import { signToken } from '../http/token-signing.ts';
import { signAdminToken } from '../admin/auth.ts';
import type { Command } from './command.ts';

export const token: Command = {
  name: 'token',
  summary: 'sign a JWT for the API',
  usage: `npm run token -- --tenant TENANT [--role ROLE] [--sub SUBJECT] [--expires 12h]   print a signed token (HS256, JWT_SECRET)
       npm run token -- --admin [--sub SUBJECT] [--expires 1h]   print an operator page token (HS256, ADMIN_JWT_SECRET)

  --role     ${API_ROLES.join(' or ')} (default ${APP_ROLE})
  --expires  a duration such as 12h, 30m or 3600 (seconds), at most JWT_MAX_LIFETIME (default 12h; 1h with --admin)
  --admin    a token for the operator page (/admin) instead of the API: no tenant, signed with ADMIN_JWT_SECRET
`,
  async run(config, args) {
    const { values } = parseArgs({
      args,
      options: {
        role: { type: 'string', default: APP_ROLE },
        tenant: { type: 'string' },
        sub: { type: 'string' },
        expires: { type: 'string' },
        admin: { type: 'boolean', default: false },
      },
    });
    if (values.admin) {
      if (!config.adminJwtSecret)
        throw new ConfigError('--admin needs ADMIN_JWT_SECRET (at least 32 characters, not JWT_SECRET): the key the operator page checks its tokens with');
      process.stdout.write(
        `${signAdminToken(config.adminJwtSecret, { sub: values.sub, expiresIn: values.expires ?? '1h', maxLifetimeS: config.jwtMaxLifetimeS })}\n`,
      );
      return;
    }
    if (!(API_ROLES as readonly string[]).includes(values.role)) throw new ConfigError(`--role must be one of ${API_ROLES.join(', ')}`);
    if (!values.tenant) throw new ConfigError('--tenant is required (the tenant the token may see)');
    const secret = effectiveJwtSecret(config);
    if (!secret) throw new ConfigError('JWT_SECRET must be set to sign tokens when DATABASE_URL or NODE_ENV=production is set');
    process.stdout.write(
      `${signToken(secret, { role: values.role as ApiRole, tenant: values.tenant, sub: values.sub, expiresIn: values.expires ?? '12h', audience: config.jwtAudience, maxLifetimeS: config.jwtMaxLifetimeS })}\n`,
    );
  },
};
