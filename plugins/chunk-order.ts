// A document's chunks come in reading order: `Document.chunks` defaults to
// `orderBy: [CHUNK_INDEX_ASC]` instead of the primary key (a random UUID), so
// `chunks(first: 1)` is the first chunk. An explicit orderBy still wins.
import type { GraphQLEnumType } from 'graphql';

export const ChunkOrderPlugin: GraphileConfig.Plugin = {
  name: 'SheratanChunkOrderPlugin',
  description: 'Document.chunks defaults to chunkIndex order',
  version: '1.0.0',
  after: ['PgConnectionArgOrderByDefaultValuePlugin'],
  schema: {
    hooks: {
      GraphQLObjectType_fields_field_args_arg(arg, build, context) {
        const { scope, Self } = context;
        if (scope.argName !== 'orderBy' || !scope.isPgFieldConnection || Self.name !== 'Document' || scope.pgFieldResource?.name !== 'document_chunks') {
          return arg;
        }
        const orderBy = build.getTypeByName(build.inflection.orderByType(build.inflection.tableType(scope.pgFieldResource.codec))) as
          GraphQLEnumType | undefined;
        const chunkIndexAsc = orderBy?.getValues().find((v) => v.name === 'CHUNK_INDEX_ASC');
        if (!chunkIndexAsc) return arg;
        // Replaces the primary-key default PgConnectionArgOrderByDefaultValuePlugin set (extend() would refuse to).
        return { ...arg, defaultValue: [chunkIndexAsc.value] };
      },
    },
  },
};
