// What one GraphQL operation may ask for, decided before anything runs.
//
// Two passes. `countSelections` needs no schema and runs on the parsed
// document before validation (graphql's validation compares every pair of
// same-named fields, so a document of 3,000 aliases costs seconds there, and
// grafast's planning more): it bounds aliases and the number of fields, with
// fragments counted at every place they are spread.
//
// `operationCost` runs once the document is valid, with the schema and the
// request's variables coerced as execution will see them (defaults of
// variables and of arguments included), and walks the operation multiplying
// list sizes down the tree:
//
//   cost(field)   = multiplier of the field (how many times it is resolved)
//                   × (1 + the size of its input: INPUT_COSTS)
//   multiplier    = the parent's multiplier
//                   × first/last of a connection, for its `nodes` and `edges`
//                   × first/last of a field returning a list, or its cap
//                     when it has neither (a list nothing bounds, such as
//                     groupedAggregates, counts as the most it may return)
//   cost          = the sum over every field of the operation
//
// Arguments are taken as the SQL will see them: an explicit `null` for an
// argument with a default is its default (the search plugins plan the same,
// match-select.ts `argOrDefault`), so `first: null` costs what `first: 10` does.
//
// and it checks every `first`/`last`/`offset` against its cap, that a
// connection's `nodes`/`edges` are asked for with `first` or `last`, the
// length of search text, and how many searches (each writes a search_logs
// row) the operation would run.
import {
  BREAK,
  getNamedType,
  getOperationAST,
  getNullableType,
  GraphQLList,
  isInterfaceType,
  isObjectType,
  Kind,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  type SelectionSetNode,
  visit,
} from 'graphql';
import { getArgumentValues, getVariableValues } from 'graphql/execution/values.js';

export interface CostLimits {
  /** Fields in one operation, fragments counted where spread (MAX_QUERY_FIELDS). */
  maxFields: number;
  /** Aliased fields in one operation (MAX_QUERY_ALIASES). */
  maxAliases: number;
  /** Directives in the whole document (MAX_QUERY_DIRECTIVES). */
  maxDirectives: number;
  /** Fragment definitions and spreads in the whole document (MAX_QUERY_FRAGMENTS). */
  maxFragments: number;
  /** Variable definitions in the whole document (MAX_QUERY_VARIABLES). */
  maxVariables: number;
  /** The estimated cost (MAX_QUERY_COST). */
  maxCost: number;
  /** Largest first/last on any connection or list field (MAX_PAGE_SIZE). */
  maxPageSize: number;
  /** Largest offset (MAX_OFFSET). */
  maxOffset: number;
  /** Largest first of a search field (MAX_SEARCH_RESULTS): the fields marked as searches (isSearchField). */
  maxSearchResults: number;
  /** Searches one operation may run (MAX_SEARCHES_PER_REQUEST). */
  maxSearches: number;
  /** Characters of a search's queryText (MAX_QUERY_TEXT_LENGTH). */
  maxQueryText: number;
}

export interface Refusal {
  message: string;
  code: string;
}

const fragmentsOf = (document: DocumentNode): Map<string, FragmentDefinitionNode> =>
  new Map(document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((f) => [f.name.value, f]));

/**
 * Counts fields and aliases of every operation in the document (fragments
 * where spread, each fragment's count computed once). Stops counting once a
 * limit is passed, so its cost is bounded by the limits, not the document.
 */
export function countSelections(
  document: DocumentNode,
  limits: Pick<CostLimits, 'maxFields' | 'maxAliases' | 'maxDirectives' | 'maxFragments' | 'maxVariables'>,
): Refusal | null {
  // Directives and variable definitions anywhere in the document: validation
  // checks (and may report) each one. Fragments, defined and spread: validation's overlapping-fields
  // rule compares them pairwise (300 cyclic fragments, 13 KB, took 290 ms).
  let directives = 0;
  let fragmentUses = 0;
  let variables = 0;
  visit(document, {
    VariableDefinition: () => (++variables > limits.maxVariables ? BREAK : undefined),
    Directive: () => (++directives > limits.maxDirectives ? BREAK : undefined),
    FragmentDefinition: () => (++fragmentUses > limits.maxFragments ? BREAK : undefined),
    FragmentSpread: () => (++fragmentUses > limits.maxFragments ? BREAK : undefined),
  });
  if (directives > limits.maxDirectives) {
    return { code: 'TOO_MANY_DIRECTIVES', message: `the GraphQL document has more than ${limits.maxDirectives} directives (MAX_QUERY_DIRECTIVES)` };
  }
  if (variables > limits.maxVariables) {
    return { code: 'TOO_MANY_VARIABLES', message: `the GraphQL document defines more than ${limits.maxVariables} variables (MAX_QUERY_VARIABLES)` };
  }
  if (fragmentUses > limits.maxFragments) {
    return {
      code: 'TOO_MANY_FRAGMENTS',
      message: `the GraphQL document has more than ${limits.maxFragments} fragment definitions and spreads (MAX_QUERY_FRAGMENTS)`,
    };
  }
  const fragments = fragmentsOf(document);
  const memo = new Map<string, { fields: number; aliases: number }>();
  const visiting = new Set<string>();
  const count = (set: SelectionSetNode | undefined): { fields: number; aliases: number } => {
    const total = { fields: 0, aliases: 0 };
    for (const selection of set?.selections ?? []) {
      let part: { fields: number; aliases: number };
      if (selection.kind === Kind.FIELD) {
        part = count(selection.selectionSet);
        part = { fields: part.fields + 1, aliases: part.aliases + (selection.alias ? 1 : 0) };
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        part = count(selection.selectionSet);
      } else {
        const name = selection.name.value;
        const cached = memo.get(name);
        if (cached) part = cached;
        else if (visiting.has(name))
          part = { fields: 0, aliases: 0 }; // a cycle: validation reports it
        else {
          visiting.add(name);
          part = count(fragments.get(name)?.selectionSet);
          visiting.delete(name);
          memo.set(name, part);
        }
      }
      total.fields += part.fields;
      total.aliases += part.aliases;
      // Numbers beyond the limits need not be exact.
      if (total.fields > limits.maxFields || total.aliases > limits.maxAliases) return total;
    }
    return total;
  };
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
    const { fields, aliases } = count(definition.selectionSet);
    const name = definition.name ? `'${definition.name.value}'` : 'the operation';
    if (aliases > limits.maxAliases) {
      return { code: 'TOO_MANY_ALIASES', message: `${name} has more than ${limits.maxAliases} aliased fields (MAX_QUERY_ALIASES)` };
    }
    if (fields > limits.maxFields) {
      return {
        code: 'TOO_MANY_FIELDS',
        message: `${name} has more than ${limits.maxFields} fields, counting fragments where they are spread (MAX_QUERY_FIELDS)`,
      };
    }
  }
  return null;
}

/**
 * What an argument's input costs beyond the field itself: ingesting 5,000
 * chunks or megabytes of text is work like returning rows is. Per object in
 * a list (a chunk), per KiB of text, per 100 numbers (a vector).
 */
export const INPUT_COSTS = { listObject: 20, textKiB: 10, hundredNumbers: 1 } as const;

/** The input cost of argument values (iterative: JSON values may nest deeply). */
export function inputCost(values: Record<string, unknown>): number {
  let objects = 0;
  let chars = 0;
  let numbers = 0;
  const stack: Array<{ value: unknown; inList: boolean }> = Object.values(values).map((value) => ({ value, inList: false }));
  while (stack.length) {
    const { value, inList } = stack.pop()!;
    if (typeof value === 'string') chars += value.length;
    else if (typeof value === 'number') numbers++;
    else if (Array.isArray(value)) for (const item of value) stack.push({ value: item, inList: true });
    else if (value && typeof value === 'object') {
      if (inList) objects++;
      for (const item of Object.values(value)) stack.push({ value: item, inList: false });
    }
  }
  return objects * INPUT_COSTS.listObject + Math.floor(chars / 1024) * INPUT_COSTS.textKiB + Math.floor(numbers / 100) * INPUT_COSTS.hundredNumbers;
}

/**
 * The path of the first string in argument values that holds a NUL character
 * (U+0000), which PostgreSQL text cannot store: refused naming where it is,
 * before anything runs, instead of the database's "invalid byte sequence".
 */
export function nulPath(values: Record<string, unknown>): string | null {
  const stack: Array<{ value: unknown; path: string }> = Object.entries(values).map(([key, value]) => ({ value, path: key }));
  while (stack.length) {
    const { value, path } = stack.pop()!;
    if (typeof value === 'string') {
      if (value.includes('\u0000')) return path;
    } else if (Array.isArray(value)) value.forEach((item, i) => stack.push({ value: item, path: `${path}[${i}]` }));
    else if (value && typeof value === 'object') for (const [key, item] of Object.entries(value)) stack.push({ value: item, path: `${path}.${key}` });
  }
  return null;
}

/** The arguments as execution's SQL sees them: an explicit null where the argument has a default is the default. */
export function withDefaults(field: GraphQLField<unknown, unknown>, args: Record<string, unknown>): Record<string, unknown> {
  let result = args;
  for (const arg of field.args) {
    if (result[arg.name] === null && arg.defaultValue !== undefined) {
      if (result === args) result = { ...args };
      result[arg.name] = arg.defaultValue;
    }
  }
  return result;
}

declare module 'graphql' {
  interface GraphQLObjectTypeExtensions {
    /** Set by RequestLimitsPlugin's schema hook: the type is a connection (graphile-build's `isConnectionType` scope). */
    sheratan?: { connection?: boolean };
  }
  // (Its type parameters are graphql's, unused here.)
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  interface GraphQLFieldExtensions<_TSource, _TContext, _TArgs> {
    /** Set by RequestLimitsPlugin's schema hook: the field runs a search (declared `@scope(isSheratanSearch: true)`). */
    sheratan?: { search?: boolean };
  }
}

/** A field that runs a search (and logs it): its first is capped by MAX_SEARCH_RESULTS, and it counts as a search. */
export const isSearchField = (field: GraphQLField<unknown, unknown>): boolean => field.extensions.sheratan?.search === true;

/** A connection, as graphile-build registered it (RequestLimitsPlugin marks it): its nodes and edges are bounded by first/last. */
const isConnection = (type: GraphQLNamedType): boolean => isObjectType(type) && type.extensions.sheratan?.connection === true;

const returnsList = (field: GraphQLField<unknown, unknown>): boolean => getNullableType(field.type) instanceof GraphQLList;

export interface CostReport {
  cost: number;
  searches: number;
}

/** The operation's cost, or the first limit it breaks. Unknown operations or bad variables are left to execution to report. */
export function operationCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  rawVariables: Record<string, unknown> | null | undefined,
  limits: CostLimits,
): { refusal: Refusal } | { report: CostReport } {
  const operation = getOperationAST(document, operationName);
  const root = operation && schema.getRootType(operation.operation);
  if (!operation || !root) return { report: { cost: 0, searches: 0 } };
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], rawVariables ?? {});
  if (coerced.errors) return { report: { cost: 0, searches: 0 } };
  const variables = coerced.coerced;
  const fragments = fragmentsOf(document);
  let cost = 0;
  let searches = 0;
  let refusal: Refusal | null = null;

  const capOf = (field: GraphQLField<unknown, unknown>): { cap: number; setting: string } =>
    isSearchField(field) ? { cap: limits.maxSearchResults, setting: 'MAX_SEARCH_RESULTS' } : { cap: limits.maxPageSize, setting: 'MAX_PAGE_SIZE' };
  const pageCheck = (selection: FieldNode, field: GraphQLField<unknown, unknown>, args: Record<string, unknown>): void => {
    const name = selection.name.value;
    for (const key of ['first', 'last'] as const) {
      const value = args[key];
      const { cap, setting } = capOf(field);
      if (typeof value === 'number' && value > cap)
        refusal ??= { code: 'PAGE_TOO_LARGE', message: `${name}(${key}: ${value}) is above the limit of ${cap} (${setting})` };
    }
    if (typeof args.offset === 'number' && args.offset > limits.maxOffset) {
      refusal ??= { code: 'OFFSET_TOO_LARGE', message: `${name}(offset: ${args.offset}) is above the limit of ${limits.maxOffset} (MAX_OFFSET)` };
    }
    // Search text, logged (queryText) or embedded (query): bounded alike.
    for (const key of ['queryText', 'query'] as const) {
      const text = args[key];
      if (typeof text === 'string' && text.length > limits.maxQueryText) {
        refusal ??= {
          code: 'QUERY_TEXT_TOO_LONG',
          message: `${name}(${key}) has ${text.length} characters, above the limit of ${limits.maxQueryText} (MAX_QUERY_TEXT_LENGTH)`,
        };
      }
    }
  };

  /** `page`: the first/last of the connection whose selection this is (null: neither given). */
  const walk = (
    set: SelectionSetNode | undefined,
    parent: GraphQLNamedType,
    multiplier: number,
    page: { field: string; size: number | null; cap: number } | null,
  ): void => {
    if (!set || refusal) return;
    for (const selection of set.selections) {
      if (refusal) return;
      if (selection.kind === Kind.INLINE_FRAGMENT) {
        const type = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parent;
        walk(selection.selectionSet, type ?? parent, multiplier, page);
        continue;
      }
      if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const fragment = fragments.get(selection.name.value);
        const type = fragment && schema.getType(fragment.typeCondition.name.value);
        if (fragment && type) walk(fragment.selectionSet, type, multiplier, page);
        continue;
      }
      const name = selection.name.value;
      cost += multiplier;
      if (name.startsWith('__') || !(isObjectType(parent) || isInterfaceType(parent))) continue; // introspection and typename: cheap
      const field = parent.getFields()[name];
      if (!field) continue;
      let args: Record<string, unknown>;
      try {
        args = withDefaults(field, getArgumentValues(field, selection, variables));
      } catch {
        continue; // execution reports it
      }
      pageCheck(selection, field, args);
      const nul = nulPath(args);
      if (nul) refusal ??= { code: 'TEXT_HAS_NUL', message: `${name}(${nul}) contains a NUL character (U+0000); PostgreSQL text cannot store it: remove it` };
      cost += multiplier * inputCost(args);
      if (isSearchField(field)) searches += multiplier;
      const type = getNamedType(field.type);
      const size = typeof args.first === 'number' ? args.first : typeof args.last === 'number' ? args.last : null;
      let inner = multiplier;
      if (page && (name === 'nodes' || name === 'edges')) {
        if (page.size === null) {
          refusal ??= {
            code: 'PAGE_SIZE_REQUIRED',
            message: `${page.field} needs first or last (at most ${page.cap}) to return ${name}`,
          };
          return;
        }
        inner = multiplier * page.size;
      } else if (returnsList(field) && selection.selectionSet) {
        // A list of objects nothing bounds by argument may return its cap's worth.
        inner = multiplier * (size ?? capOf(field).cap);
      }
      walk(selection.selectionSet, type, inner, isConnection(type) ? { field: name, size, cap: capOf(field).cap } : null);
    }
  };
  walk(operation.selectionSet, root, 1, null);
  if (refusal) return { refusal };
  if (searches > limits.maxSearches) {
    return {
      refusal: {
        code: 'TOO_MANY_SEARCHES',
        message: `the operation would run ${searches} searches, above the limit of ${limits.maxSearches} (MAX_SEARCHES_PER_REQUEST)`,
      },
    };
  }
  if (cost > limits.maxCost) {
    return {
      refusal: { code: 'QUERY_TOO_COSTLY', message: `the operation's estimated cost is ${cost}, above the limit of ${limits.maxCost} (MAX_QUERY_COST)` },
    };
  }
  return { report: { cost, searches } };
}
