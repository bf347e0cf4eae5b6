// Request limits for grafserv: query depth, introspection policy, and a cap on
// `first`/`last` that rejects (never silently clips) oversized pages.
import { depthLimit } from '@graphile/depth-limit';
import { SafeError } from 'grafast';
import { Kind, NoSchemaIntrospectionCustomRule, parse, visit, type DocumentNode } from 'graphql';

export interface RequestLimits {
  maxQueryDepth: number;
  /** Largest `first`/`last` on any connection or list field. */
  maxPageSize: number;
  /** Per-field caps that override maxPageSize, e.g. { searchDocumentChunks: 100 }. */
  fieldCaps?: Record<string, { cap: number; setting: string }>;
  introspection: boolean;
}

/** Finds the first `first`/`last` argument above its cap, using the request's variables. */
export function findOversizedPage(
  document: DocumentNode,
  variables: Record<string, unknown> | null | undefined,
  limits: Pick<RequestLimits, 'maxPageSize' | 'fieldCaps'>,
): string | null {
  let problem: string | null = null;
  visit(document, {
    Field(field) {
      if (problem) return false;
      for (const arg of field.arguments ?? []) {
        if (arg.name.value !== 'first' && arg.name.value !== 'last') continue;
        let value: unknown;
        if (arg.value.kind === Kind.INT) value = Number(arg.value.value);
        else if (arg.value.kind === Kind.VARIABLE) value = variables?.[arg.value.name.value];
        if (typeof value !== 'number') continue;
        const special = limits.fieldCaps?.[field.name.value];
        const cap = special?.cap ?? limits.maxPageSize;
        if (value > cap) {
          const setting = special?.setting ?? 'MAX_PAGE_SIZE';
          problem = `${field.name.value}(${arg.name.value}: ${value}) is above the limit of ${cap} (${setting})`;
          return false;
        }
      }
      return undefined;
    },
  });
  return problem;
}

export function makeRequestLimitsPlugin(limits: RequestLimits): GraphileConfig.Plugin {
  return {
    name: 'SheratanRequestLimitsPlugin',
    version: '1.0.0',
    description: 'Query depth, introspection policy and page-size caps',
    grafserv: {
      middleware: {
        setPreset(next, event) {
          event.validationRules.push(
            depthLimit({
              maxDepth: limits.maxQueryDepth,
              maxListDepth: limits.maxQueryDepth,
              maxSelfReferentialDepth: limits.maxQueryDepth,
            }),
          );
          if (!limits.introspection) event.validationRules.push(NoSchemaIntrospectionCustomRule);
          return next();
        },
        processGraphQLRequestBody(next, event) {
          const { query, variableValues } = event.body;
          if (typeof query === 'string') {
            let document: DocumentNode | null = null;
            try {
              document = parse(query);
            } catch {
              // Syntax errors are reported by the normal validation step.
            }
            const problem = document && findOversizedPage(document, variableValues as Record<string, unknown> | null, limits);
            if (problem) throw new SafeError(problem, { statusCode: 400 });
          }
          return next();
        },
      },
    },
  };
}
