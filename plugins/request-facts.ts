// Records each GraphQL request's operation name (and whether it searches)
// for the request log line and the metrics labels. The facts object travels
// in the GraphQL context (`sheratanFacts`, put there by whoever builds the
// context: the gateway's grafast.context); this plugin fills it in from the
// parsed document once the request is valid, and imports nothing from src/.
import { isPromiseLike } from 'grafast';
import { Kind, TypeInfo, visit, visitWithTypeInfo, type DocumentNode, type GraphQLSchema, type OperationDefinitionNode } from 'graphql';
import { isSearchField } from './operation-cost.ts';

/** What the GraphQL layer tells the HTTP layer about a request. */
export interface GraphQLFacts {
  operation?: string;
  search?: boolean;
}

declare global {
  namespace Grafast {
    interface Context {
      /** The request's facts for logs and metrics, filled in by SheratanRequestFactsPlugin. */
      sheratanFacts?: GraphQLFacts;
    }
  }
}

/** The operation a request runs: the one named `operationName`, or the only one. */
function chosenOperation(document: DocumentNode, operationName: string | null | undefined): OperationDefinitionNode | undefined {
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  return operationName ? operations.find((o) => o.name?.value === operationName) : operations[0];
}

/** The operation name of a request: its name, or else its first root field's. */
export function operationName(document: DocumentNode, given: string | null | undefined): string | undefined {
  const operation = chosenOperation(document, given);
  if (!operation) return undefined;
  if (operation.name) return operation.name.value;
  const first = operation.selectionSet.selections.find((s) => s.kind === Kind.FIELD);
  return first?.kind === Kind.FIELD ? first.name.value : undefined;
}

// grafserv hands the same DocumentNode to every request with the same text
// (its parse cache), so each document is walked once per schema.
const searching = new WeakMap<GraphQLSchema, WeakMap<DocumentNode, boolean>>();

/** Whether the document selects a search field (isSearchField: the schema says which) anywhere, fragments included. */
function searches(schema: GraphQLSchema, document: DocumentNode): boolean {
  let bySchema = searching.get(schema);
  if (!bySchema) searching.set(schema, (bySchema = new WeakMap()));
  let found = bySchema.get(document);
  if (found === undefined) {
    found = false;
    const types = new TypeInfo(schema);
    visit(
      document,
      visitWithTypeInfo(types, {
        Field() {
          const field = types.getFieldDef();
          if (field && isSearchField(field)) found = true;
        },
      }),
    );
    bySchema.set(document, found);
  }
  return found;
}

export const RequestFactsPlugin: GraphileConfig.Plugin = {
  name: 'SheratanRequestFactsPlugin',
  version: '1.0.0',
  description: 'Operation names for logs and metrics',
  grafast: {
    middleware: {
      prepareArgs(next) {
        // After `next`: the context (and the facts in it) is built there.
        const record = (args: Grafast.ExecutionArgs): Grafast.ExecutionArgs => {
          const facts = (args.contextValue as Grafast.Context).sheratanFacts;
          if (facts) {
            facts.operation = operationName(args.document, args.operationName);
            facts.search = searches(args.schema, args.document);
          }
          return args;
        };
        const args = next();
        return isPromiseLike(args) ? args.then(record) : record(args);
      },
    },
  },
};
