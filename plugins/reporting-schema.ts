// The reporting views (schema sheratan_reporting, migration `section
// reporting`) are named in GraphQL as if they were in the first schema:
// `SearchDaily` and `allSearchDailies`, not `SheratanReportingSearchDaily`.
// PostGraphile prefixes the names of every schema but the first with the
// schema's name to avoid collisions; the views' names are chosen not to
// collide with the tables' (a collision fails the schema build, loudly).

/** The schema of the API's tables and functions. */
export const API_SCHEMA = 'sheratan';
/** The reporting views, exposed on the reporting endpoint only. */
export const REPORTING_SCHEMA = 'sheratan_reporting';

export const ReportingSchemaPlugin: GraphileConfig.Plugin = {
  name: 'ReportingSchemaPlugin',
  version: '0.0.0',
  description: 'Names the reporting views without their schema as a prefix',
  inflection: {
    replace: {
      _schemaPrefix(previous, options, details) {
        return details.pgNamespace.nspname === REPORTING_SCHEMA ? '' : previous!(details);
      },
    },
  },
};
