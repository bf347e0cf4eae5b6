// groupedAggregates (from @graphile/pg-aggregates) takes no `first`: nothing
// bounded how many groups one request could return (7,041 in one, with a page
// cap of 1,000). Its statement now asks for at most MAX_PAGE_SIZE + 1 groups
// and numbers them; the SQL function sheratan_private.assert_group_count
// refuses the statement when a group beyond the cap exists, so the limit holds
// in the same statement, before anything is sent. The cost walk
// (operation-cost.ts) counts such a list at its cap.
import type { PgSelectQueryBuilderCallback, PgSelectStep } from 'postgraphile/@dataplan/pg';
import { constant, context as requestContext, lambda, type ExecutableStep, type FieldPlanResolver } from 'postgraphile/grafast';
import { sql } from 'postgraphile/pg-sql2';
import { DEFAULT_REQUEST_LIMITS } from '../src/config/request-limits.ts';

/** Numbers each group: row_number() runs after grouping, so the cap + 1st group raises (SQLSTATE 54000). */
const countGroups =
  (cap: number): PgSelectQueryBuilderCallback =>
  (builder) => {
    builder.selectAndReturnIndex(sql`sheratan_private.assert_group_count(row_number() over (), ${sql.literal(cap)})`);
  };

export const GroupedAggregatesCapPlugin: GraphileConfig.Plugin = {
  name: 'SheratanGroupedAggregatesCapPlugin',
  version: '1.0.0',
  description: 'Bounds the groups of groupedAggregates by MAX_PAGE_SIZE',
  after: ['PgAggregatesAddConnectionGroupedAggregatesPlugin'],
  schema: {
    hooks: {
      GraphQLObjectType_fields_field(field, build, context) {
        const { scope } = context;
        if (!scope.isConnectionType || !scope.isPgConnectionRelated || scope.fieldName !== 'groupedAggregates' || !field.plan) return field;
        const cap = (build.options.sheratanRequestLimits ?? DEFAULT_REQUEST_LIMITS).maxPageSize;
        const plan: FieldPlanResolver<any, any, any> = field.plan; // eslint-disable-line @typescript-eslint/no-explicit-any
        return {
          ...field,
          plan($connection, fieldArgs, info) {
            const $select = plan($connection, fieldArgs, info) as PgSelectStep;
            $select.setFirst(constant(cap + 1));
            // Applied when the statement is built (a constant would apply at plan time, before the select's arguments are final).
            $select.apply(lambda(requestContext(), () => countGroups(cap), true));
            return $select as unknown as ExecutableStep;
          },
        };
      },
    },
  },
};
