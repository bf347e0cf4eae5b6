// The shared shape of every search field: a pgSelect over the rows of a table
// (chunks or documents) as a search function ranked them, in the function's
// order, in one statement. The search functions return (id, scores…); the
// rows are joined by id in the FROM clause, so RLS applies to them again and
// relations of the result (e.g. `chunk { document }`) join into the same
// statement. Scores are read as extra columns of the alias.
import { TYPES, pgSelect, type PgCodec, type PgResource, type PgSelectSingleStep, type PgSelectStep } from 'postgraphile/@dataplan/pg';
import { lambda, type ExecutableStep, type FieldArgs, type FieldInfo, type ObjectStep } from 'postgraphile/grafast';
import { sql, type SQL } from 'postgraphile/pg-sql2';

/**
 * A field's argument as the cost walk counts it (operation-cost.ts
 * `withDefaults`): an explicit `null` where the argument has a default is
 * that default, so what is costed is what the SQL receives.
 */
export function argOrDefault(fieldArgs: FieldArgs, info: FieldInfo, name: string): ExecutableStep {
  const $raw = fieldArgs.getRaw(name);
  const fallback: unknown = info.field.args.find((arg) => arg.name === name)?.defaultValue;
  return fallback === undefined ? $raw : lambda($raw, (value: unknown) => value ?? fallback, true);
}

/** One named argument of a search function call: its value step and codec. */
export type SearchArgument = readonly [name: string, step: ExecutableStep, codec: PgCodec];

/** The search function's output columns after the row id, with their codecs. */
export type MatchColumns = Record<string, PgCodec>;

export interface MatchSelect {
  $select: PgSelectStep;
  /** The SQL of one score column of the current row, e.g. `score('distance')`. */
  score(column: string): SQL;
}

/**
 * Rows of `resource` in the order `schema.fn(args…)` returns their ids.
 * `fn` returns `(id, …columns)`; each column becomes readable through `score`.
 */
export function selectMatches(
  resource: PgResource,
  fn: readonly [schema: string, name: string],
  args: readonly SearchArgument[],
  columns: MatchColumns,
): MatchSelect {
  const table = resource.from as SQL;
  const names = Object.keys(columns);
  const $select = pgSelect({
    resource,
    identifiers: [],
    // The functions are volatile only because they log the search.
    mode: 'normal',
    hasImplicitOrder: false,
    from: {
      callback: ($root) => {
        const call = namedCall(
          fn,
          args.map(([name, $step, codec]) => [name, $root.placeholder($step, codec)] as const),
        );
        const aliases = ['match_id', ...names.map((n) => `match_${n}`), 'match_order'].map((n) => sql.identifier(n));
        return sql`(select t.*, ${sql.join(
          aliases.slice(1).map((a) => sql`m.${a}`),
          ', ',
        )}
  from ${call} with ordinality as m(${sql.join(aliases, ', ')})
  join ${table} as t on t.id = m.match_id)`;
      },
    },
  });
  $select.orderBy({ fragment: sql`${$select.alias}.match_order`, codec: TYPES.bigint, direction: 'ASC' });
  $select.setOrderIsUnique();
  return { $select, score: (column) => sql`${$select.alias}.${sql.identifier(`match_${column}`)}` };
}

/** `schema.fn(name => value, …)`: named arguments, so the ones left out take their SQL defaults. */
export function namedCall(fn: readonly [schema: string, name: string], args: ReadonlyArray<readonly [name: string, value: SQL]>): SQL {
  return sql`${sql.identifier(...fn)}(${sql.join(
    args.map(([name, value]) => sql`${sql.identifier(name)} => ${value}`),
    ', ',
  )})`;
}

/** A result row's `distance` and `similarity` (1 − distance), from the SQL of its distance. */
export function distanceFields($row: PgSelectSingleStep, distance: SQL) {
  return { distance: $row.select(distance, TYPES.float), similarity: $row.select(sql`(1 - ${distance})`, TYPES.float) };
}

/**
 * Plans for the fields of a result type built with `object({...})`: each field
 * reads its own step back, so `chunk` stays a PgSelectSingleStep and its
 * relations can still join into the search statement.
 */
export function planFieldsOf(fields: readonly string[]): Record<string, ($result: ObjectStep<Record<string, ExecutableStep>>) => ExecutableStep> {
  return Object.fromEntries(fields.map((field) => [field, ($result: ObjectStep<Record<string, ExecutableStep>>) => $result.get(field)]));
}
